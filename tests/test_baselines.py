"""Baseline inverters (HiFi-GAN V1/V3, Vocos): published sizes, shapes, scripting, single-thread inference."""
import pytest
import torch

from neuraldrum.models.baselines import BASELINES, PUBLISHED_N_MELS, PUBLISHED_PARAMS, count_params

NAMES = sorted(BASELINES)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_registry_is_consistent():
    assert set(BASELINES) == set(PUBLISHED_PARAMS) == set(PUBLISHED_N_MELS) == {"hifigan_v1", "hifigan_v3", "vocos"}


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_paper(name):
    n = count_params(BASELINES[name](PUBLISHED_N_MELS[name]))
    assert abs(n / PUBLISHED_PARAMS[name] - 1) < 0.02, f"{name}: {n} parameters vs {PUBLISHED_PARAMS[name]:.0f}"


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_and_scripting(name, one_thread):
    torch.manual_seed(0)
    model = BASELINES[name](128).eval()
    mel = torch.randn(1, 128, 10)
    scripted = torch.jit.script(model)
    with torch.inference_mode():
        wave = model(mel)
        wave_scripted = scripted(mel)
    assert wave.shape == (1, 10 * 256) and wave.dtype == torch.float32
    assert torch.isfinite(wave).all()
    torch.testing.assert_close(wave_scripted, wave, atol=1e-5, rtol=1e-4)
    if name.startswith("hifigan"):
        assert wave.abs().max() <= 1.0  # tanh output
