"""Face analysis networks (paper losses and metrics): reconstructor, parser, identity, VGG/LPIPS, Inception."""
