"""The interactive editor (faceshop_jax.serve): its API through TestClient, its page in Chromium."""
import base64
import dataclasses
import io
import os
import shutil
import socket
import threading
import time

import numpy as np
from PIL import Image
import pytest
from selenium import webdriver
from selenium.webdriver.chrome import service as chrome_service
from selenium.webdriver.support import wait
from starlette import testclient
import uvicorn

from faceshop_jax import command_line
from faceshop_jax import edit
from faceshop_jax import inversion
from faceshop_jax import media
from faceshop_jax import serve

# Bounded waits of the browser test, seconds.
SERVER_START_TIMEOUT = 20
PAGE_TIMEOUT = 30


@pytest.fixture(scope='module')
def bundle(gan_workdir):
  return command_line.load_generator(gan_workdir)


@pytest.fixture(scope='module')
def out_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('editor_out'))


@pytest.fixture(scope='module')
def editor_app(bundle, out_dir):
  return serve.make_app(bundle, out_dir)


@pytest.fixture(scope='module')
def client(editor_app):
  with testclient.TestClient(editor_app) as test_client:
    yield test_client


def decode_png(data_url: str) -> np.ndarray:
  """uint8 [H, W, 3] of a PNG data: URL."""
  prefix = 'data:image/png;base64,'
  assert data_url.startswith(prefix)
  with Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):]))) as image:
    assert image.format == 'PNG'
    return np.asarray(image.convert('RGB'))


def test_controls_list_the_face_model_units(client, bundle):
  answer = client.get('/api/controls').json()
  assert answer['units'] == list(bundle.face_model.expression_names)
  assert answer['image_size'] == bundle.config.model.sr_resolution
  assert answer['ranges']['yaw'][1] > 0 and answer['ranges']['pitch'][1] > 0
  for slider in answer['expression_sliders']:
    assert set(slider['units']) <= set(answer['units'])
  assert 'jawOpen' in answer['units'] and answer['expression_sliders'][0]['units'] == ['jawOpen']


def test_page_is_offline_html(client):
  response = client.get('/')
  assert response.status_code == 200 and response.headers['content-type'].startswith('text/html')
  assert 'id="image"' in response.text and 'id="semantics"' in response.text
  assert 'http://' not in response.text and 'https://' not in response.text  # nothing fetched


def test_render_returns_image_and_mask_at_the_generator_size(client, bundle):
  answer = client.post('/api/render', json={'seed': 1, 'expression': {'jawOpen': 0.5}}).json()
  size = bundle.config.model.sr_resolution
  image, semantics = decode_png(answer['image']), decode_png(answer['semantics'])
  assert image.shape == semantics.shape == (size, size, 3)
  assert answer['render_ms'] > 0


def test_render_is_deterministic_and_follows_the_camera(client):
  edit = {'seed': 2, 'yaw': 0.0, 'light': {'yaw': 0.3, 'pitch': 0.2, 'intensity': 0.8}}
  first = client.post('/api/render', json=edit).json()
  again = client.post('/api/render', json=edit).json()
  turned = client.post('/api/render', json={**edit, 'yaw': 0.6}).json()
  np.testing.assert_array_equal(decode_png(first['image']), decode_png(again['image']))
  assert not np.array_equal(decode_png(first['image']), decode_png(turned['image']))


@pytest.mark.parametrize('edit, field', [
    ({'yaw': 1.5}, 'yaw'),
    ({'expression': {'jawOpen': 1.5}}, 'jawOpen'),
    ({'expression': {'noSuchUnit': 0.5}}, 'noSuchUnit'),
    ({'seed': -1}, 'seed'),
    ({'seed': 1.5}, 'seed'),
    ({'light': {'yaw': 0.0, 'pitch': 0.0, 'intensity': -1}}, 'light.intensity'),
    ({'light': {'yaw': 0.0, 'pitch': 0.0}}, 'intensity'),
    ({'blend': 'yes'}, 'blend'),
    ({'colour': 'red'}, 'colour'),
])
def test_a_bad_field_is_rejected_naming_it(client, edit, field):
  response = client.post('/api/render', json=edit)
  assert response.status_code == 422
  assert field in response.json()['error']


def test_out_of_range_message_says_the_range(client):
  error = client.post('/api/render', json={'pitch': -0.9}).json()['error']
  assert '-0.9' in error and '0.4' in error


def test_save_rejects_an_unknown_kind_writing_nothing(client, out_dir):
  response = client.post('/api/save', json={'kind': 'gif'})
  assert response.status_code == 422 and 'kind' in response.json()['error']
  assert not os.listdir(out_dir)


def test_save_png_writes_the_image_and_its_mask(client, out_dir, bundle):
  paths = client.post('/api/save', json={'seed': 3, 'kind': 'png'}).json()['paths']
  assert [os.path.dirname(p) for p in paths] == [out_dir] * 2
  size = bundle.config.model.sr_resolution
  for path in paths:
    with Image.open(path) as image:
      assert image.format == 'PNG' and image.size == (size, size)
  assert paths[1].endswith('_semantics.png')


def test_save_mesh_writes_a_coloured_ply(client):
  [path] = client.post('/api/save', json={'seed': 3, 'kind': 'mesh'}).json()['paths']
  with open(path, 'rb') as f:
    header = f.read(200).split(b'end_header')[0].decode('ascii')
  assert header.startswith('ply') and 'property uchar red' in header
  assert int(header.split('element vertex ')[1].split()[0]) > 0


def test_save_video_writes_an_orbit(client, bundle):
  [path] = client.post('/api/save', json={'seed': 3, 'kind': 'video'}).json()['paths']
  frames = media.read_video(path)
  assert frames.shape[0] == serve.VIDEO_FRAMES
  assert frames.shape[1] >= bundle.config.model.sr_resolution
  assert not any(name.startswith('.') for name in os.listdir(os.path.dirname(path)))


@pytest.fixture
def server_url(editor_app):
  """The editor served by uvicorn on a free loopback port, in a background thread."""
  listener = socket.socket()
  listener.bind(('127.0.0.1', 0))
  server = uvicorn.Server(uvicorn.Config(editor_app, log_level='warning'))
  thread = threading.Thread(target=server.run, kwargs={'sockets': [listener]}, daemon=True)
  thread.start()
  deadline = time.monotonic() + SERVER_START_TIMEOUT
  while not server.started:
    assert time.monotonic() < deadline, 'uvicorn did not start'
    time.sleep(0.05)
  yield f'http://127.0.0.1:{listener.getsockname()[1]}/'
  server.should_exit = True
  thread.join(SERVER_START_TIMEOUT)
  listener.close()


@pytest.mark.skipif(not (shutil.which('chromium') and shutil.which('chromedriver')),
                    reason='needs Debian\'s chromium and chromium-driver (.ci/run installs them)')
def test_page_renders_and_follows_the_yaw_slider(server_url, tmp_path):
  options = webdriver.ChromeOptions()
  options.binary_location = shutil.which('chromium')
  for argument in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                   '--window-size=1200,900'):
    options.add_argument(argument)
  driver = webdriver.Chrome(
      options=options, service=chrome_service.Service(executable_path=shutil.which('chromedriver')))
  try:
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.get(server_url)

    def image_src(browser) -> str:
      return browser.execute_script('return document.getElementById("image").src')

    first = wait.WebDriverWait(driver, PAGE_TIMEOUT).until(
        lambda d: image_src(d).startswith('data:image/png') and image_src(d))
    driver.execute_script('const yaw = document.getElementById("yaw"); yaw.value = 0.6; '
                          'yaw.dispatchEvent(new Event("input"));')
    wait.WebDriverWait(driver, PAGE_TIMEOUT).until(lambda d: image_src(d) != first)
    assert 'Rendered in' in driver.find_element('id', 'status').text
    screenshot = str(tmp_path / 'editor.png')
    assert driver.save_screenshot(screenshot)
    with Image.open(screenshot) as image:
      assert image.width >= 1000
  finally:
    driver.quit()


def test_an_inverted_persons_export_is_edited_with_an_empty_seed(client, bundle, tmp_path):
  assert client.post('/api/render', json={'seed': None}).status_code == 422
  portrait = edit.from_seeds(bundle, [7], yaw=0.2)
  personal = dataclasses.replace(bundle, portrait=inversion.portrait_record(portrait))
  with testclient.TestClient(serve.make_app(personal, str(tmp_path))) as personal_client:
    assert personal_client.get('/api/controls').json()['defaults']['seed'] is None
    response = personal_client.post('/api/render',
                                    json={'seed': None, 'yaw': 0.2, 'expression': None})
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(decode_png(response.json()['image']),
                                  edit.render(bundle, portrait).image[0])
