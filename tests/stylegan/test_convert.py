"""``nodegraph convert stylegan2``: every checkpoint layout users have, read safely.

Mutants seen to fail here: not stripping ``module.`` (dataparallel test: 99 missing / 99
unexpected keys); filling missing noise with zeros instead of a seeded draw (old-checkpoint test:
stored noise all zero); ignoring the checkpoint's ``latent_avg`` (convert_weight test).
"""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from nodes.stylegan.convert import ConversionError, convert
from nodes.stylegan.net import StyleGANConfig


def _meta(path) -> dict[str, str]:
    with safe_open(str(path), "pt") as f:
        return f.metadata()


def test_train_py_checkpoint_with_args_namespace(checkpoints, official, tmp_path):
    g, d, _ = official
    out = tmp_path / "g.safetensors"
    summary = convert(str(checkpoints["train"]), str(out))
    assert "train.py" in summary and "no latent_avg" in summary  # says w_avg was computed
    got = load_file(str(out))
    assert set(got) == set(g) | {"latent_avg"}
    assert all(torch.equal(got[k], g[k]) for k in g)
    assert got["latent_avg"].shape == (512,) and float(got["latent_avg"].abs().sum()) > 0
    cfg = StyleGANConfig.from_json(_meta(out)["config"])
    assert (cfg.size, cfg.channel_max, cfg.channel_multiplier) == (32, 32, 2)
    dout = tmp_path / "d.safetensors"
    convert(str(checkpoints["train"]), str(dout), which="d")
    assert set(load_file(str(dout))) == set(d)
    assert _meta(dout)["node_type"] == "stylegan.Discriminator"


def test_convert_weight_output_keeps_latent_avg(checkpoints, official, tmp_path):
    _, _, latent_avg = official
    out = tmp_path / "g.safetensors"
    assert "convert_weight.py" in convert(str(checkpoints["convert_weight"]), str(out))
    assert torch.equal(load_file(str(out))["latent_avg"], latent_avg)


def test_dataparallel_prefix_is_stripped(checkpoints, official, tmp_path):
    out = tmp_path / "g.safetensors"
    assert "module." in convert(str(checkpoints["dataparallel"]), str(out))
    got = load_file(str(out))
    assert not any(k.startswith("module.") for k in got)
    assert torch.equal(got["conv1.conv.weight"], official[0]["conv1.conv.weight"])


def test_old_checkpoint_without_noise_gets_seeded_noise(checkpoints, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    summary = convert(str(checkpoints["old"]), str(a))
    assert "noise buffers missing" in summary
    convert(str(checkpoints["old"]), str(b))
    ga, gb = load_file(str(a)), load_file(str(b))
    noise = [k for k in ga if k.startswith("noises.")]
    assert len(noise) == 7 and all(torch.equal(ga[k], gb[k]) for k in noise)
    assert float(ga["noises.noise_0"].std()) > 0.3


def test_other_mismatches_are_listed(official, tmp_path):
    g = dict(official[0])
    del g["convs.1.activate.bias"]
    g["convs.1.extra"] = torch.zeros(1)
    src = tmp_path / "bad.pt"
    torch.save({"g_ema": g}, src)
    with pytest.raises(ConversionError, match=r"missing keys.*convs\.1\.activate\.bias.*unexpected keys.*extra"):
        convert(str(src), str(tmp_path / "x.safetensors"))


def test_unsafe_pickle_runs_no_code(official, tmp_path):
    """An object outside the allow-list beside the weights is read as an inert stand-in
    (nodes.common.convert.Inert, issue 19 BR-2-21): its unpickling code never runs and g_ema converts.
    Mutant: ``weights_only=False`` (``_record`` runs)."""
    src = tmp_path / "evil.pt"
    RAN.clear()
    torch.save({"g_ema": official[0], "args": _Unsafe()}, src)
    convert(str(src), str(tmp_path / "x.safetensors"))
    assert RAN == [] and (tmp_path / "x.safetensors").exists()


RAN: list[str] = []


def _record(what: str) -> None:
    RAN.append(what)


class _Unsafe:
    def __reduce__(self):
        return (_record, ("unpickling ran code",))
