import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganstyle.core.errors import WeightsError
from ganstyle.core.vgg import VGGEncoder, expected_shapes, layer_names, load_vgg_encoder, load_vgg_encoder_file

from helpers import make_vgg_state


def reference_features(state, arch, images, upto):
    """Hand-built VGG: explicit conv/relu/pool over the state dict, torchvision numbering."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (images - mean) / std
    out = {}
    blocks = {"vgg16": [2, 2, 3, 3, 3], "vgg19": [2, 2, 4, 4, 4]}[arch]
    idx = 0
    for b, n in enumerate(blocks, 1):
        for i in range(1, n + 1):
            x = F.relu(F.conv2d(x, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"], padding=1))
            out[f"relu{b}_{i}"] = x
            idx += 2
            if f"relu{b}_{i}" == upto:
                return out
        x = F.max_pool2d(x, 2)
        idx += 1
    return out


@pytest.mark.parametrize("arch,file_fixture", [("vgg16", "vgg16_file"), ("vgg19", "vgg19_file")])
def test_encoder_matches_hand_built_reference(arch, file_fixture, request):
    path = request.getfixturevalue(file_fixture)
    state = make_vgg_state(arch, seed={"vgg16": 0, "vgg19": 1}[arch])
    enc = load_vgg_encoder_file(path, deepest="relu5_1")
    assert enc.arch == arch
    images = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(3))
    ref = reference_features(state, arch, images, "relu5_1")
    got = enc(images, ["relu1_1", "relu3_1", "relu4_2", "relu5_1"])
    for name, t in got.items():
        torch.testing.assert_close(t, ref[name], rtol=1e-4, atol=1e-5)
    assert got["relu4_2"].shape == (2, 512, 4, 5)


def test_matches_torchvision_layout(vgg16_file):
    torchvision = pytest.importorskip("torchvision")
    tv = torchvision.models.vgg16().features.eval()
    state = make_vgg_state("vgg16", seed=0, with_classifier=False)
    tv.load_state_dict({k[len("features."):]: v for k, v in state.items()})
    enc = load_vgg_encoder_file(vgg16_file, deepest="relu5_3")
    x = torch.rand(1, 3, 32, 32)
    norm = (x - enc.mean) / enc.std
    torch.testing.assert_close(enc(x, ["relu5_3"])["relu5_3"], tv[:30](norm), rtol=1e-4, atol=1e-5)


def test_reads_only_tensors_up_to_deepest(vgg19_file, monkeypatch):
    import safetensors
    read = []
    real = safetensors.safe_open

    class Spy:
        def __init__(self, *a, **k):
            self.f = real(*a, **k)

        def __enter__(self):
            self.inner = self.f.__enter__()
            return self

        def __exit__(self, *a):
            return self.f.__exit__(*a)

        def get_tensor(self, k):
            read.append(k)
            return self.inner.get_tensor(k)

    monkeypatch.setattr("ganstyle.core.io.safe_open", Spy)
    enc = load_vgg_encoder_file(vgg19_file, deepest="relu2_1")
    assert sorted(read) == sorted(expected_shapes("vgg19", "relu2_1"))
    assert all(not k.startswith("classifier") for k in read)
    assert enc.layer_names[-1] == "relu2_1"


def test_frozen_eval_and_dtype(vgg16_file):
    enc = load_vgg_encoder_file(vgg16_file, deepest="relu3_1", dtype="bf16")
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training
    out = enc(torch.rand(1, 3, 16, 16), ["relu3_1"])["relu3_1"]
    assert out.dtype == torch.bfloat16 and out.shape == (1, 256, 4, 4)


def test_gradients_flow_to_input(vgg16):
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    vgg16(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_identity_depends_on_weights(vgg_dir, tmp_path):
    a = load_vgg_encoder_file(vgg_dir / "vgg16.safetensors", deepest="relu1_1")
    state = make_vgg_state("vgg16", seed=5)
    save_file(state, str(tmp_path / "other.safetensors"))
    b = load_vgg_encoder_file(tmp_path / "other.safetensors", deepest="relu1_1")
    assert a.identity.startswith("vgg16:") and a.identity != b.identity


def test_wrong_architecture_is_named(vgg16_file):
    with pytest.raises(WeightsError, match=r"vgg16 weights but vgg19 was requested"):
        load_vgg_encoder_file(vgg16_file, "vgg19")


def test_not_vgg(tmp_path):
    p = tmp_path / "resnet.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, str(p))
    with pytest.raises(WeightsError, match=r"resnet\.safetensors.*not a VGG16/VGG19"):
        load_vgg_encoder_file(p)


def test_wrong_shape_is_named(tmp_path):
    state = make_vgg_state("vgg16")
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    p = tmp_path / "bad.safetensors"
    save_file(state, str(p))
    with pytest.raises(WeightsError, match=r"bad\.safetensors: key 'features\.2\.weight' has shape "
                                           r"\(64, 32, 3, 3\), expected \(64, 64, 3, 3\)"):
        load_vgg_encoder_file(p)


def test_missing_keys_are_named(tmp_path):
    state = make_vgg_state("vgg16")
    del state["features.26.bias"]
    p = tmp_path / "partial.safetensors"
    save_file(state, str(p))
    load_vgg_encoder_file(p, deepest="relu4_2")  # not needed that deep: fine
    with pytest.raises(WeightsError, match=r"partial\.safetensors: missing keys \['features\.26\.bias'\]"):
        load_vgg_encoder_file(p, deepest="relu5_3")


def test_pickle_refused(tmp_path):
    p = tmp_path / "vgg19.pth"
    p.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(WeightsError, match=r"vgg19\.pth.*never"):
        load_vgg_encoder_file(p)
    renamed = tmp_path / "sneaky.safetensors"
    renamed.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(WeightsError, match=r"sneaky\.safetensors.*pickle/zip"):
        load_vgg_encoder_file(renamed)


def test_truncated_file(vgg16_file, tmp_path):
    p = tmp_path / "cut.safetensors"
    p.write_bytes(vgg16_file.read_bytes()[: 200_000])
    with pytest.raises(WeightsError, match=r"cut\.safetensors: truncated"):
        load_vgg_encoder_file(p)


def test_unknown_layer_and_bad_input(vgg16):
    with pytest.raises(ValueError, match="relu9_9"):
        VGGEncoder("vgg16", deepest="relu9_9")
    with pytest.raises(ValueError, match=r"relu5_3.*not computed"):
        vgg16(torch.rand(1, 3, 8, 8), ["relu5_3"])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        vgg16(torch.rand(1, 4, 8, 8))
    assert layer_names("vgg19").count("relu5_4") == 1


def test_load_by_registry_name_from_offline_hub_cache(vgg19_file, tmp_path):
    from helpers import fill_hub_cache
    cache = tmp_path / "cache"
    fill_hub_cache(cache, "timm/vgg19.tv_in1k", {"model.safetensors": vgg19_file})
    enc = load_vgg_encoder("vgg19", cache_dir=cache, device="cpu", deepest="relu1_1")
    assert enc.arch == "vgg19" and "timm/vgg19.tv_in1k" in enc.source
