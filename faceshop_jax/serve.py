r"""The interactive editor: a local web page whose sliders re-render a generated portrait.

  python -m faceshop_jax.serve --workdir=/work/runs/imitative [--host=127.0.0.1] [--port=7860] \
      [--out=editor_out]

--workdir is a training run of a generator stage (its newest checkpoint) or an export. The page
(plain HTML, CSS and JS served by the app itself: it works offline) has sliders for the camera,
the main expression units, the light and the seeds; each change re-renders the portrait on the
server (edit.render, one at a time) and shows the image beside its semantic mask. "Save PNG",
"Save mesh" and "Save video" write the current portrait into --out.

Endpoints (make_app):
  GET  /              the page.
  GET  /api/controls  the sliders' units, ranges and defaults.
  POST /api/render    an edit (below) -> {image, semantics: PNG data URLs, render_ms}.
  POST /api/save      an edit plus kind: 'png' | 'mesh' | 'video' -> {paths}.

An edit is a JSON object of (all optional; DEFAULT_EDIT fills the rest)
  seed           int >= 0: the portrait's controls (models.seed_controls); null: the personal
                 portrait of an export written by python -m faceshop_jax.invert.
  identity_seed  int >= 0: whose identity κ it wears (default: seed's own).
  yaw, pitch     camera radians inside the trained range (face_model.prior.PriorConfig).
  expression     {unit: value in [0, 1]} (the others 0), or null for the seed's own expression.
  light          {yaw, pitch, intensity}: one white light (LIGHT_RANGES), or null for the seed's
                 own light.
  blend          bool: draw an expression edit volume-blended into the seed's portrait (§4.4).
A field of the wrong type, out of range or unknown is answered by HTTP 422 {error: message}
before anything is rendered.
"""
import base64
import contextlib
import hashlib
import io
import json
import math
import os
import sys
import threading
import time
from typing import Any, NamedTuple

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from starlette import applications
from starlette import concurrency
from starlette import requests
from starlette import responses
from starlette import routing
import uvicorn

from faceshop_jax import classes
from faceshop_jax import command_line
from faceshop_jax import console
from faceshop_jax import edit
from faceshop_jax import inference
from faceshop_jax import media
from faceshop_jax import surface
from faceshop_jax import video
from faceshop_jax import visualize
from faceshop_jax.face_model import prior as prior_lib

FLAGS = flags.FLAGS

# The expression sliders: (label, the units one slider drives together); the page shows those
# whose units the face model has.
EXPRESSION_SLIDERS = (('Jaw open', ('jawOpen',)),
                      ('Smile', ('mouthSmileLeft', 'mouthSmileRight')),
                      ('Eye blink', ('eyeBlinkLeft', 'eyeBlinkRight')),
                      ('Brows up', ('browInnerUp',)))
# The light a request may set: about the directions face_model.prior.sample_illumination draws
# its lights from (azimuth ±0.6π, elevation -0.2 to 1 radians), and up to about two of its
# brightest lights.
LIGHT_RANGES = {'yaw': (-1.8, 1.8), 'pitch': (-0.2, 1.0), 'intensity': (0.0, 1.5)}
# Seeds become uint32 PRNG keys (models.seed_controls).
MAX_SEED = 2**32 - 1
SAVE_KINDS = ('png', 'mesh', 'video')
# The saved orbit: 1 s at 24 fps, rendered one frame at a time (the batch make_app compiled).
VIDEO_FRAMES = 24
VIDEO_FPS = 24
DEFAULT_EDIT = {'seed': 0, 'identity_seed': None, 'yaw': 0.0, 'pitch': 0.0, 'expression': {},
                'light': None, 'blend': True}


class RequestError(ValueError):
  """A request field that is missing, of the wrong type, out of range or unknown (HTTP 422)."""


class Light(NamedTuple):
  """One white directional light at (yaw, pitch) radians with this intensity (edit.light_gamma)."""
  yaw: float
  pitch: float
  intensity: float


class Edit(NamedTuple):
  """A checked edit request (the module docstring); identity_seed is resolved to a seed (None
  with seed None: the personal portrait's own identity)."""
  seed: int | None
  identity_seed: int | None
  yaw: float
  pitch: float
  expression: dict[str, float] | None
  light: Light | None
  blend: bool


def _object(payload: Any, where: str, allowed=None) -> dict:
  """payload if it is a JSON object (with no keys outside `allowed`, if given), else a
  RequestError."""
  if not isinstance(payload, dict):
    raise RequestError(f'{where} must be a JSON object; got {json.dumps(payload)}.')
  unknown = sorted(set(payload) - set(allowed)) if allowed is not None else []
  if unknown:
    raise RequestError(f'Unknown field(s) {unknown} in {where}; allowed: {", ".join(allowed)}.')
  return payload


def _number(name: str, value: Any, limits: tuple[float, float] | None = None) -> float:
  """value as a float if it is a finite number (in [low, high] = limits, if given), else a
  RequestError naming it."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
    allowed = f' in [{limits[0]:g}, {limits[1]:g}]' if limits else ''
    raise RequestError(f'{name} must be a number{allowed}; got {json.dumps(value)}.')
  if limits and not limits[0] <= value <= limits[1]:
    raise RequestError(f'{name} = {value} is outside [{limits[0]:g}, {limits[1]:g}].')
  return float(value)


def _seed(name: str, value: Any) -> int:
  """value if it is an integer in [0, MAX_SEED], else a RequestError naming it."""
  if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
    raise RequestError(f'{name} must be an integer in [0, {MAX_SEED}]; got {json.dumps(value)}.')
  return value


def _check_with_edit(name: str, check, *args) -> None:
  """Runs one of edit's range checks; its ValueError becomes a RequestError naming the field."""
  try:
    check(*args)
  except ValueError as e:
    raise RequestError(f'{name}: {e}') from None


def parse_edit(payload: Any, bundle: inference.GeneratorBundle, extra_keys=()) -> Edit:
  """The checked edit of a request's JSON object (the module docstring).

  Args:
    payload: the decoded JSON body.
    bundle: the generator (its face model's expression units).
    extra_keys: further keys the endpoint reads itself (e.g. 'kind'), allowed but not parsed.

  Raises:
    RequestError: naming the field, its value and what is allowed.
  """
  fields = {**DEFAULT_EDIT, **_object(payload, 'the request', (*DEFAULT_EDIT, *extra_keys))}
  if fields['seed'] is None and bundle.portrait is None:
    raise RequestError('seed must be an integer: this generator holds no personal portrait.')
  seed = None if fields['seed'] is None else _seed('seed', fields['seed'])
  identity_seed = (seed if fields['identity_seed'] is None
                   else _seed('identity_seed', fields['identity_seed']))
  yaw, pitch = _number('yaw', fields['yaw']), _number('pitch', fields['pitch'])
  _check_with_edit('camera', edit.check_view, yaw, pitch)
  expression = fields['expression']
  if expression is not None:
    expression = {unit: _number(f'expression.{unit}', value)
                  for unit, value in _object(expression, 'expression').items()}
    _check_with_edit('expression', edit.expression_vector, bundle.face_model, expression)
  light = fields['light']
  if light is not None:
    _object(light, 'light', Light._fields)
    missing = [name for name in Light._fields if name not in light]
    if missing:
      raise RequestError(f'light needs {", ".join(Light._fields)}; {", ".join(missing)} missing.')
    light = Light(*(_number(f'light.{name}', light[name], LIGHT_RANGES[name])
                    for name in Light._fields))
  if not isinstance(fields['blend'], bool):
    raise RequestError(f'blend must be true or false; got {json.dumps(fields["blend"])}.')
  return Edit(seed, identity_seed, yaw, pitch, expression, light, fields['blend'])


def portrait_of(bundle: inference.GeneratorBundle, request: Edit) -> edit.Portrait:
  """The portrait (a batch of 1) of a checked edit."""
  portrait = edit.from_bundle(bundle, None if request.seed is None else [request.seed],
                              request.yaw, request.pitch)
  if request.identity_seed != request.seed:
    portrait = edit.with_identity(bundle, portrait, seed=request.identity_seed)
  if request.expression is not None:
    portrait = edit.with_expression(bundle, portrait, units=request.expression)
  if request.light is not None:
    portrait = edit.with_light(bundle, portrait, yaw=request.light.yaw, pitch=request.light.pitch,
                               intensity=request.light.intensity)
  return portrait


def semantic_picture(labels: np.ndarray, size: int) -> np.ndarray:
  """uint8 [size, size, 3]: labels int [r, r] in class colours, nearest-neighbour upsampled."""
  rows = np.arange(size) * labels.shape[0] // size
  return classes.colorize(labels[rows][:, rows])


def png_data_url(image: np.ndarray) -> str:
  """A data: URL of a uint8 [H, W, 3] image as PNG."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode('ascii')


def controls(bundle: inference.GeneratorBundle) -> dict:
  """What the page builds its inputs from: the face model's units, the sliders and their ranges."""
  units = bundle.face_model.expression_names
  prior = prior_lib.PriorConfig()
  expression_default = {unit: 0.0 for _, driven in EXPRESSION_SLIDERS for unit in driven
                        if unit in units}
  return {
      'step': bundle.step,
      'image_size': bundle.config.model.sr_resolution,
      'units': list(units),
      'expression_sliders': [{'label': label, 'units': list(driven)}
                             for label, driven in EXPRESSION_SLIDERS if set(driven) <= set(units)],
      'ranges': {'yaw': [-prior.max_yaw, prior.max_yaw],
                 'pitch': [-prior.max_pitch, prior.max_pitch], 'expression': [0.0, 1.0],
                 'seed': [0, MAX_SEED],
                 **{f'light_{name}': list(limits) for name, limits in LIGHT_RANGES.items()}},
      'personal': bundle.portrait is not None,
      'defaults': {**DEFAULT_EDIT, 'expression': expression_default,
                   **({'seed': None} if bundle.portrait is not None else {})},
  }


class Editor:
  """Renders and saves edits of one generator, one at a time.

  Attributes:
    bundle: the generator.
    out_dir: where saves are written.
  """

  def __init__(self, bundle: inference.GeneratorBundle, out_dir: str):
    self.bundle, self.out_dir = bundle, os.path.abspath(out_dir)
    self._lock = threading.Lock()

  def render(self, request: Edit) -> tuple[edit.Rendered, float]:
    """(the rendered portrait, the milliseconds it took to build and render)."""
    with self._lock:
      start = time.perf_counter()
      rendered = edit.render(self.bundle, portrait_of(self.bundle, request), blend=request.blend)
      return rendered, 1000 * (time.perf_counter() - start)

  def warm(self) -> None:
    """Renders the page's first portrait blended and not (one compilation each), so that the first
    slider move need not wait for XLA."""
    request = parse_edit(controls(self.bundle)['defaults'], self.bundle)
    for blend in (True, False):
      self.render(request._replace(blend=blend))

  def render_json(self, request: Edit) -> dict:
    """The /api/render answer: {image, semantics: PNG data URLs, render_ms}."""
    rendered, milliseconds = self.render(request)
    image = rendered.image[0]
    return {'image': png_data_url(image),
            'semantics': png_data_url(semantic_picture(rendered.labels[0], image.shape[0])),
            'render_ms': round(milliseconds, 1)}

  def save(self, request: Edit, kind: str) -> list[str]:
    """Writes the edit's PNG and semantic mask, mesh (.ply) or orbit video (.mp4) into out_dir,
    each file atomically; returns the paths.

    Raises:
      RequestError: a mesh of a field that never reaches the surface level (edit.extract_mesh).
    """
    os.makedirs(self.out_dir, exist_ok=True)
    name = 'portrait' if request.seed is None else f'seed{request.seed}'
    stem = os.path.join(self.out_dir, f'{name}_{_edit_digest(request)}')
    if kind == 'png':
      rendered, _ = self.render(request)
      image = rendered.image[0]
      pictures = {f'{stem}.png': image,
                  f'{stem}_semantics.png': semantic_picture(rendered.labels[0], image.shape[0])}
      with contextlib.ExitStack() as files:  # all of them replace their targets, or none
        for path, picture in pictures.items():
          visualize.save_png(files.enter_context(media.atomic_output(path)), picture)
      return list(pictures)
    with self._lock:
      portrait = portrait_of(self.bundle, request)
      if kind == 'mesh':
        try:
          shape, colours = edit.extract_mesh(self.bundle, portrait, blend=request.blend)
        except ValueError as e:
          raise RequestError(f'mesh: {e}') from None
        path = f'{stem}.ply'
        surface.write_mesh(path, shape, colours)
        return [path]
      frames = video.render_frames(self.bundle, video.orbit(portrait, VIDEO_FRAMES), batch=1,
                                   blend=request.blend)
      return [media.write_video(f'{stem}_orbit.mp4', frames, VIDEO_FPS)]


def _edit_digest(request: Edit) -> str:
  """8 hex digits naming an edit: the same edit saves to the same files."""
  return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:8]


def _error(message: str) -> responses.JSONResponse:
  return responses.JSONResponse({'error': message}, status_code=422)


async def _json_body(request: requests.Request) -> Any:
  """The request's decoded JSON body, or a RequestError."""
  try:
    return await request.json()
  except ValueError as e:
    raise RequestError(f'The request body is not JSON: {e}.') from None


def make_app(bundle: inference.GeneratorBundle, out_dir: str) -> applications.Starlette:
  """The editor's web app (the module docstring), warmed: its first render is compiled already.

  Args:
    bundle: the generator.
    out_dir: where /api/save writes (created on the first save).
  """
  editor = Editor(bundle, out_dir)
  editor.warm()
  page = PAGE.encode('utf-8')
  control_json = controls(bundle)

  async def index(_):
    return responses.Response(page, media_type='text/html; charset=utf-8')

  async def control_list(_):
    return responses.JSONResponse(control_json)

  async def render(request: requests.Request):
    try:
      checked = parse_edit(await _json_body(request), bundle)
    except RequestError as e:
      return _error(str(e))
    return responses.JSONResponse(await concurrency.run_in_threadpool(editor.render_json, checked))

  async def save(request: requests.Request):
    try:
      payload = await _json_body(request)
      checked = parse_edit(payload, bundle, extra_keys=('kind',))
      kind = payload.get('kind')
      if kind not in SAVE_KINDS:
        raise RequestError(f'kind must be one of {", ".join(SAVE_KINDS)}; got {json.dumps(kind)}.')
      paths = await concurrency.run_in_threadpool(editor.save, checked, kind)
    except RequestError as e:
      return _error(str(e))
    return responses.JSONResponse({'paths': paths})

  return applications.Starlette(routes=[
      routing.Route('/', index),
      routing.Route('/api/controls', control_list),
      routing.Route('/api/render', render, methods=['POST']),
      routing.Route('/api/save', save, methods=['POST']),
  ])


def define_flags() -> None:
  """The command's flags (defined only when it runs, so the module imports anywhere)."""
  command_line.define_generator_flags()
  flags.DEFINE_string('host', '127.0.0.1', 'Address to serve on (127.0.0.1: this machine only).')
  flags.DEFINE_integer('port', 7860, 'Port to serve on.')
  flags.DEFINE_string('out', 'editor_out', 'Directory the Save buttons write into.')
  flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  try:
    bundle = command_line.load_generator(FLAGS.workdir, FLAGS.step)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f'serve: {e}')
  application = make_app(bundle, FLAGS.out)
  print(f'Editing step {bundle.step} of {FLAGS.workdir}: open http://{FLAGS.host}:{FLAGS.port}/ '
        f'in a browser; saves go to {os.path.abspath(FLAGS.out)}. Press Ctrl+C to stop.',
        flush=True)
  uvicorn.run(application, host=FLAGS.host, port=FLAGS.port, log_level='warning')


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>faceshop_jax editor</title>
<style>
  :root { --ink: #1d232b; --muted: #5e6976; --line: #d9dee4; --panel: #f6f7f9; --accent: #2f6fd6; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: var(--ink); background: #fff; }
  header { padding: 10px 20px; border-bottom: 1px solid var(--line); display: flex;
           align-items: baseline; gap: 16px; }
  header h1 { font-size: 17px; margin: 0; }
  header span { color: var(--muted); }
  main { display: grid; grid-template-columns: 330px 1fr; gap: 20px; padding: 16px 20px; }
  aside { display: flex; flex-direction: column; gap: 12px; }
  fieldset { border: 1px solid var(--line); border-radius: 6px; background: var(--panel);
             padding: 8px 12px 10px; margin: 0; }
  legend { font-weight: 600; padding: 0 4px; }
  .row { display: grid; grid-template-columns: 96px 1fr 44px; align-items: center; gap: 8px;
         margin: 4px 0; }
  .row output { text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); }
  .row input[type=number] { width: 100%; }
  .check { display: flex; align-items: center; gap: 6px; margin: 4px 0; }
  input[type=range] { width: 100%; accent-color: var(--accent); }
  input:disabled + output, .row:has(input:disabled) { opacity: 0.45; }
  .views { display: flex; flex-wrap: wrap; gap: 16px; }
  figure { margin: 0; }
  figure img { display: block; width: 360px; height: 360px; border: 1px solid var(--line);
               border-radius: 4px; background: #eceff2; image-rendering: pixelated; }
  figcaption { color: var(--muted); margin-top: 4px; }
  #status { margin: 10px 0; min-height: 20px; color: var(--muted); }
  #status.error { color: #b3261e; }
  .buttons { display: flex; gap: 8px; flex-wrap: wrap; }
  button { font: inherit; padding: 6px 12px; border: 1px solid var(--accent); border-radius: 5px;
           background: var(--accent); color: #fff; cursor: pointer; }
  button:disabled { opacity: 0.5; cursor: default; }
  #saved { margin: 8px 0 0; padding-left: 18px; color: var(--muted); font-family: ui-monospace,
           monospace; font-size: 12px; word-break: break-all; }
</style>
</head>
<body>
<header><h1>faceshop_jax editor</h1><span id="about"></span></header>
<main>
  <aside>
    <fieldset id="portrait"><legend>Portrait</legend>
      <div class="row"><label for="seed">Seed</label><input id="seed" type="number" min="0" step="1"
        value="0"><span></span></div>
      <div class="row"><label for="identity_seed">Identity seed</label><input id="identity_seed"
        type="number" min="0" step="1" placeholder="same as seed"><span></span></div>
      <label class="check"><input id="blend" type="checkbox" checked> Volume blending (keep hair,
        clothes and background)</label>
    </fieldset>
    <fieldset id="camera"><legend>Camera</legend></fieldset>
    <fieldset id="expression"><legend>Expression</legend></fieldset>
    <fieldset id="light"><legend>Light</legend>
      <label class="check"><input id="sampled_light" type="checkbox" checked> Sampled light (the
        seed's own)</label>
    </fieldset>
  </aside>
  <section>
    <div class="views">
      <figure><img id="image" alt="generated portrait"><figcaption>Image</figcaption></figure>
      <figure><img id="semantics" alt="semantic mask">
        <figcaption>Semantic mask</figcaption></figure>
    </div>
    <div id="status">Loading…</div>
    <div class="buttons">
      <button data-kind="png">Save PNG</button><button data-kind="mesh">Save mesh</button>
      <button data-kind="video">Save video</button>
    </div>
    <ul id="saved"></ul>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let controls = null;
let inFlight = false;   // a render request is on its way
let stale = false;      // the inputs changed since it was sent

function slider(parent, id, label, range, value, step) {
  const row = document.createElement("div");
  row.className = "row";
  row.innerHTML = `<label for="${id}">${label}</label><input id="${id}" type="range"` +
    ` min="${range[0]}" max="${range[1]}" step="${step}" value="${value}"><output></output>`;
  parent.appendChild(row);
  const input = row.querySelector("input"), output = row.querySelector("output");
  const show = () => { output.textContent = Number(input.value).toFixed(2); };
  input.addEventListener("input", () => { show(); render(); });
  show();
  return input;
}

function edit() {
  const number = (id) => Number($(id).value);
  const expression = {};
  for (const [i, group] of controls.expression_sliders.entries()) {
    for (const unit of group.units) expression[unit] = number(`expression_${i}`);
  }
  const identity = $("identity_seed").value.trim();
  return {
    seed: $("seed").value.trim() === "" ? null : number("seed"),
    identity_seed: identity === "" ? null : Number(identity),
    yaw: number("yaw"), pitch: number("pitch"), expression,
    light: $("sampled_light").checked ? null : {
      yaw: number("light_yaw"), pitch: number("light_pitch"), intensity: number("light_intensity")},
    blend: $("blend").checked,
  };
}

async function post(url, body) {
  const response = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify(body)});
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function showStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function render() {
  if (inFlight) { stale = true; return; }
  inFlight = true;
  stale = false;
  const started = performance.now();
  try {
    const answer = await post("/api/render", edit());
    $("image").src = answer.image;
    $("semantics").src = answer.semantics;
    showStatus(`Rendered in ${answer.render_ms.toFixed(0)} ms on the server ` +
               `(${(performance.now() - started).toFixed(0)} ms in all).`, false);
  } catch (error) {
    showStatus(error.message, true);
  } finally {
    inFlight = false;
    if (stale) render();
  }
}

async function save(button) {
  const buttons = document.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  showStatus(`Saving ${button.textContent.replace("Save ", "")}…`, false);
  try {
    const answer = await post("/api/save", {...edit(), kind: button.dataset.kind});
    for (const path of [...answer.paths].reverse()) {  // the newest save on top, in order
      const item = document.createElement("li");
      item.textContent = path;
      $("saved").prepend(item);
    }
    showStatus(`Saved ${answer.paths.length} file(s).`, false);
  } catch (error) {
    showStatus(error.message, true);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

async function start() {
  controls = await (await fetch("/api/controls")).json();
  const ranges = controls.ranges, defaults = controls.defaults;
  if (controls.personal) {  // an inverted person's export: an empty seed is that person
    $("seed").value = "";
    $("seed").placeholder = "the inverted person";
  }
  $("about").textContent = `step ${controls.step}, ${controls.image_size}×${controls.image_size}` +
    ` pixels; ${controls.units.length} expression units`;
  slider($("camera"), "yaw", "Yaw", ranges.yaw, defaults.yaw, 0.01);
  slider($("camera"), "pitch", "Pitch", ranges.pitch, defaults.pitch, 0.01);
  controls.expression_sliders.forEach((group, i) => {
    slider($("expression"), `expression_${i}`, group.label, ranges.expression, 0, 0.01);
  });
  if (controls.expression_sliders.length === 0) {
    $("expression").insertAdjacentHTML("beforeend", "<div>This face model has none of the " +
                                       "editor's expression units.</div>");
  }
  const lights = [slider($("light"), "light_yaw", "Yaw", ranges.light_yaw, 0, 0.01),
                  slider($("light"), "light_pitch", "Pitch", ranges.light_pitch, 0.3, 0.01),
                  slider($("light"), "light_intensity", "Intensity", ranges.light_intensity, 0.7,
                         0.01)];
  const lightEnabled = () => {
    lights.forEach((s) => { s.disabled = $("sampled_light").checked; });
  };
  $("sampled_light").addEventListener("change", () => { lightEnabled(); render(); });
  lightEnabled();
  for (const id of ["seed", "identity_seed"]) $(id).addEventListener("input", render);
  $("blend").addEventListener("change", render);
  document.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => save(b)));
  render();
}

start().catch((error) => showStatus(`Cannot load the controls: ${error.message}`, true));
</script>
</body>
</html>
"""


if __name__ == '__main__':
  define_flags()
  console.quiet_library_logs()
  app.run(main)
