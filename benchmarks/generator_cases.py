"""The generator benchmark's cases, shared by generator_bench.py (ours) and torch_reference.py.

Built like EG3D's generator (fp32, 512-d z and w, 25-d camera); see generator_bench.py.
"""
CASES = {
    'eg3d_small': dict(
        generator=dict(channel_base=4096, channel_max=128, rendering_resolution=64,
                       sr_resolution=128, num_coarse=24, num_fine=24, mapping_layers=2,
                       sr_channels=(128, 64)),
        forward_batches=(1, 4), backward_batches=(2,)),
    'eg3d_full': dict(
        generator=dict(channel_base=32768, channel_max=512, rendering_resolution=128,
                       sr_resolution=512, num_coarse=48, num_fine=48, mapping_layers=8,
                       sr_channels=(256, 128)),
        forward_batches=(1, 4), backward_batches=()),
}
