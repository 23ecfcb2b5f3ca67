"""Classifiers: any torchvision model with a new head, pretrained weights, checkpoint files."""

from __future__ import annotations

import contextlib
import logging
import socket
import urllib.request
from pathlib import Path

import torch
import torchvision
from torch import nn

from fgood_bench.errors import FgoodError, article, first_line

CHECKPOINT_FORMAT = "fgood-bench classifier v1"


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the model's last ``nn.Linear`` (``fc``, ``classifier[-1]``, ``heads.head``, ...) for one of ``num_classes``."""
    name, last = None, None
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            name, last = module_name, module
    if last is None:
        raise FgoodError(f"{type(model).__name__} has no linear classification head to replace")
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], nn.Linear(last.in_features, num_classes))
    return model


def build_model(arch: str, num_classes: int, weights: str | None = None, image_size: int | None = None) -> nn.Module:
    """A torchvision classifier ``arch`` for ``num_classes`` classes.

    ``weights`` is a torchvision weights name (``IMAGENET1K_V2``), a local file holding the
    pretrained model's state dict (as torchvision publishes them), or None / ``none``. Vision
    transformers trained from scratch are built for ``image_size`` (their position embeddings
    fix it; pretrained ones keep the size they were trained at).
    """
    if arch.startswith(TIMM_PREFIX):
        return build_timm_model(arch, num_classes, weights, image_size)
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise FgoodError(f"unknown architecture {arch!r}: expected a torchvision classification model such as resnet50, "
                         f"or {TIMM_PREFIX}<timm model name> such as {TIMM_PREFIX}convnext_tiny.fb_in22k")
    if weights in (None, "none"):
        extra = {"image_size": image_size} if arch.startswith("vit_") and image_size else {}
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **extra)
    if Path(weights).expanduser().is_file():
        model = torchvision.models.get_model(arch, weights=None)
        state = _load(Path(weights).expanduser())
        try:
            model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except RuntimeError as err:
            raise FgoodError(f"{weights}: not a state dict of {arch} ({first_line(err)})") from None
    else:
        try:
            model = torchvision.models.get_model(arch, weights=weights)
        except (ValueError, KeyError) as err:
            raise FgoodError(f"--weights {weights!r}: neither a file nor weights of {arch} ({err})") from None
        except OSError as err:  # no network: urllib errors are OSErrors
            raise FgoodError(
                f"could not download {arch} {weights} weights ({err}); download them once where there is a "
                f"network, or pass --weights FILE with the state dict"
            ) from None
    return replace_head(model, num_classes)


TIMM_PREFIX = "timm/"
# what a timm model's ``pretrained_cfg`` says about its inputs, as checkpoints record it (timm's data config)
TIMM_DATA_CONFIG = ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")


def build_timm_model(arch: str, num_classes: int, weights: str | None = None, image_size: int | None = None) -> nn.Module:
    """A timm model ``timm/<name>`` (timm's own naming, e.g. ``timm/convnext_tiny.fb_in22k``) for ``num_classes``.

    ``weights``: None / ``none`` (random), ``pretrained`` (timm downloads the tag's weights), or a local
    ``.safetensors`` file or PyTorch state dict of the model (as timm and the Hugging Face hub publish them;
    timm adapts it as for its own downloads: a new classifier, position embeddings resampled). A model of a
    fixed input size (ViT, EVA, Swin, ...) is built for ``image_size``. timm is imported only here."""
    try:
        import timm  # only for a timm/ architecture: torchvision models never import it
    except ImportError:
        raise FgoodError(f"--arch {arch}: timm is not installed (pip install 'timm>=1.0.15')") from None
    name = arch[len(TIMM_PREFIX):]
    if not timm.is_model(name):
        raise FgoodError(f"unknown architecture {arch!r}: {name!r} is not a timm model (timm.list_models() names them)")
    try:
        default_cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError as err:  # an unknown pretrained tag
        raise FgoodError(f"--arch {arch}: {first_line(err)}") from None
    kwargs: dict = {"num_classes": num_classes}
    fixed = default_cfg is not None and default_cfg.fixed_input_size
    if fixed and image_size and image_size != default_cfg.input_size[-1]:
        kwargs["img_size"] = image_size
    if weights in (None, "none"):
        return _sized(_create_timm(timm, arch, name, kwargs), kwargs)
    if weights == "pretrained":
        if default_cfg is None or not (default_cfg.hf_hub_id or default_cfg.url):
            raise FgoodError(f"--weights pretrained: timm has no pretrained weights for {arch}; pass --weights FILE or none")
        try:
            with _offline_unless_reachable():
                return _sized(_create_timm(timm, arch, name, {**kwargs, "pretrained": True}), kwargs)
        except FgoodError:
            raise
        except Exception as err:  # no network: requests', httpx' and huggingface_hub's errors alike
            raise FgoodError(f"--weights pretrained: could not download {arch}'s weights ({type(err).__name__}); with no "
                             f"network, pass --weights FILE (the model's .safetensors or state-dict file)") from None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FgoodError(f"--weights {weights!r}: for {arch} give a .safetensors or state-dict file, 'pretrained' or 'none'")
    state = _load_weights(path)
    # timm loads a file for another number of classes non-strictly (it drops the classifier) and only logs
    # the weights it missed: collect that record, so that a file of another model is refused, not half-loaded
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("timm.models._builder")
    level, logger.level = logger.level, logging.INFO
    logger.addHandler(handler)
    try:
        model = _create_timm(timm, arch, name, {**kwargs, "pretrained": True,
                                                "pretrained_cfg_overlay": {"state_dict": state}}, weights=path)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    model.pretrained_cfg.pop("state_dict", None)  # the weights are in the model now; keep no second copy
    classifier = default_cfg.classifier if default_cfg is not None else None
    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    for record in records:
        text = record.getMessage()
        if text.startswith("Missing keys ("):
            missing = [k for k in text[len("Missing keys ("):].partition(")")[0].split(", ")
                       if not any(k.startswith(head + ".") for head in heads)]
            if missing:
                raise FgoodError(f"{path}: not a state dict of {arch} ({len(missing)} of its weights are missing, "
                                 f"e.g. {missing[0]})")
    return _sized(model, kwargs)


def _sized(model: nn.Module, kwargs: dict) -> nn.Module:
    """A model of a fixed input size built for another size (``img_size``) says so in its pretrained config,
    which settings read for its geometry and checkpoints record."""
    if "img_size" in kwargs and isinstance(getattr(model, "pretrained_cfg", None), dict):
        model.pretrained_cfg["input_size"] = (3, kwargs["img_size"], kwargs["img_size"])
    return model


@contextlib.contextmanager
def _offline_unless_reachable():
    """Where the Hugging Face hub cannot be reached, its client in offline mode (its cache only) for the
    call: it would otherwise retry for most of a minute, printing a line per try, before it fails."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    reachable = bool(urllib.request.getproxies())  # behind a proxy a direct connection says nothing: let the hub try
    if not constants.HF_HUB_OFFLINE and not reachable:
        try:
            socket.create_connection((host, 443), timeout=5).close()
            reachable = True
        except OSError:
            pass
    offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE or not reachable
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = offline


def _create_timm(timm, arch: str, name: str, kwargs: dict, weights: Path | None = None) -> nn.Module:
    try:
        return timm.create_model(name, **kwargs)
    except TypeError as err:  # an option this model does not take (img_size of a CNN)
        raise FgoodError(f"--arch {arch}: {first_line(err)}") from None
    except (RuntimeError, KeyError, ValueError, AssertionError) as err:
        if weights is not None:
            raise FgoodError(f"{weights}: not a state dict of {arch} ({first_line(err)})") from None
        raise FgoodError(f"--arch {arch}: {first_line(err)}") from None


def _load_weights(path: Path) -> dict:
    """A weights file's state dict: ``.safetensors``, or a PyTorch file (a bare state dict, or one under
    ``state_dict`` / ``model`` as training scripts save it)."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise FgoodError(f"{path}: not a readable safetensors file ({first_line(err)})") from None
    state = _load(path)
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            state = state.get(key, state) if isinstance(state.get(key), dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FgoodError(f"{path}: expected a state dict (parameter names -> tensors)")
    return state


def timm_data_config(model: nn.Module) -> dict | None:
    """A timm model's data config (input size, interpolation, crop, mean, std), as checkpoints record it."""
    cfg = getattr(unwrap(model), "pretrained_cfg", None)
    if not isinstance(cfg, dict):
        return None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items() if k in TIMM_DATA_CONFIG}


def _load(path: Path):
    from fgood_bench.inputs import open_regular

    with open_regular(path, "checkpoint file") as handle:  # a folder, FIFO or device: one line, never blocks
        try:
            return torch.load(handle, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle, zip and torch errors alike; torch's span several lines
            raise FgoodError(f"{path}: not a loadable PyTorch file ({type(err).__name__}: {first_line(err)})") from None


def save_classifier(path: Path, model: nn.Module, arch: str, classes: list[str], extra: dict | None = None) -> None:
    """Write a classifier checkpoint that ``load_classifier`` (and ``weights_only=True``) can read."""
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    payload = {"format": CHECKPOINT_FORMAT, "arch": arch, "classes": list(classes), "state_dict": state, **(extra or {})}
    if arch.startswith(TIMM_PREFIX) and timm_data_config(model) is not None:  # the model's own pretrained config
        payload.setdefault("pretrained_cfg", timm_data_config(model))
    atomic_torch_save(payload, path)


def load_classifier(path: str | Path, num_classes: int | None, arch: str | None = None,
                    image_size: int | None = None) -> tuple[nn.Module, dict]:
    """Load a classifier trained on ``num_classes`` classes (None: as many as its head has); a bare
    state dict needs ``arch``."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise FgoodError(f"{path}: a folder, not a checkpoint file (give its classifier.pt)")
    if not path.is_file():
        raise FgoodError(f"{path}: checkpoint file not found")
    payload = _load(path)
    if not isinstance(payload, dict):
        raise FgoodError(f"{path}: expected a checkpoint dict, got {type(payload).__name__}")
    state = payload.get("state_dict", payload)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise FgoodError(f"{path}: 'state_dict' must map parameter names to tensors, got {type(state).__name__}")
    classes = payload.get("classes", [])
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise FgoodError(f"{path}: 'classes' must be a list of class names, got {type(classes).__name__}")
    arch = payload.get("arch", arch)
    if arch is None:
        raise FgoodError(f"{path}: a bare state dict; say which architecture it is with --arch")
    if not isinstance(arch, str):
        raise FgoodError(f"{path}: 'arch' must be a torchvision model name, got {type(arch).__name__}")
    rotation = any(k.startswith("rotation_head.") for k in state)
    head = [v for k, v in state.items() if k.endswith(".weight") and getattr(v, "ndim", 0) == 2
            and not k.startswith("rotation_head.")]
    if not head:
        raise FgoodError(f"{path}: no classification layer in the state dict")
    num_classes = head[-1].shape[0] if num_classes is None else num_classes
    if head[-1].shape[0] != num_classes:
        raise FgoodError(f"{path}: classifier has {head[-1].shape[0]} outputs, the dataset has {num_classes} classes")
    model = build_model(arch, num_classes, image_size=payload.get("image_size", image_size))
    if rotation:  # trained with the rotation objective: keep its 4-way head
        attach_rotation_head(model)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise FgoodError(f"{path}: does not fit {arch} ({first_line(err)})") from None
    # what the checkpoint recorded of its training, kept with the model so that evaluating the model
    # in memory (fgood_bench.evaluate_model) resolves the same settings as evaluating the file
    model.fgood_bench_checkpoint = {"path": str(path), **{k: v for k, v in payload.items() if k != "state_dict"}}
    return model, payload


def load_checked_classifier(path: str | Path, classes: list[str], what: str, arch: str | None = None,
                            image_size: int | None = None, strict_arch: bool = True) -> tuple[nn.Module, dict, str]:
    """:func:`load_classifier` for ``classes`` (in label order), refusing a checkpoint trained on other
    classes (``what`` names them, e.g. "the benchmark's ID classes") or, with ``strict_arch``, of another
    architecture than ``arch`` (which otherwise only names a bare state dict's). Returns the model, the
    checkpoint's payload and its architecture."""
    model, payload = load_classifier(path, len(classes), arch, image_size)
    if "classes" in payload and list(payload["classes"]) != list(classes):
        raise FgoodError(f"{path}: trained on other classes than {what}")
    recorded = payload.get("arch", arch)
    if strict_arch and arch and recorded != arch:
        raise FgoodError(f"{path}: {article(recorded)} checkpoint; --arch {arch} cannot load it (omit --arch)")
    return model, payload, recorded


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel or torch.compile wrapper."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a partial file, fsynced, then renamed: a full disk or a kill leaves the previous file."""
    from fgood_bench.outputs import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FgoodError(f"{path.parent}: cannot be created ({err.strerror or err})") from None
    # torch reports a failed write (a full disk) as a RuntimeError from its zip writer
    def write(partial: Path) -> None:
        with open(partial, "wb") as handle:  # a file object: the archive's inner name is fixed, not the temp name
            torch.save(obj, handle)

    atomic_write(path, write, errors=(OSError, RuntimeError))


class RotationHead(nn.Module):
    """A 4-way rotation classifier on the input features of the model's classification head."""

    def __init__(self, model: nn.Module):
        super().__init__()
        classifier = model.get_classifier() if hasattr(model, "get_classifier") else None  # a timm model's
        linear = [m for m in model.modules() if isinstance(m, nn.Linear) and m is not classifier]
        if not isinstance(classifier, nn.Linear) and not linear:
            raise FgoodError(f"the rotation objective needs a linear classification head; {type(model).__name__} has none")
        head = classifier if isinstance(classifier, nn.Linear) else linear[-1]
        self.linear = nn.Linear(head.in_features, 4)
        self.features = None
        head.register_forward_hook(lambda module, args, output: setattr(self, "features", args[0]))

    def forward(self) -> torch.Tensor:
        return self.linear(self.features)


def attach_rotation_head(model: nn.Module) -> nn.Module:
    if not hasattr(model, "rotation_head"):
        model.rotation_head = RotationHead(model)
    return model


def rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch rotated by 0, 90, 180 and 270 degrees, and the rotation labels."""
    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return rotated, labels
