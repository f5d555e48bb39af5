"""The probe's own model and optimizer: a clone carrying the user's weights and
optimizer *state*, or the user's objects behind a bitwise snapshot/restore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras.src import tree
from keras.src.trainers.compile_utils import CompileLoss

from gradscope.engine.snapshot import VariableSnapshot, nbytes

# Above this, a clone's second copy of the weights and optimizer slots would be
# the probe's largest memory cost (a 100 M-parameter model with Adam: 1.2 GB);
# such models are probed in place, behind a snapshot kept on disk.
CLONE_MAX_BYTES = 256 * 2**20


@dataclass
class ProbeTarget:
    model: Any
    optimizer: Any
    loss_fn: Any  # (y, y_pred, sample_weight) -> scalar data loss; None: compiled without one
    mode: str  # "clone" | "in-place"
    notes: list[str] = field(default_factory=list)
    optimizer_state_copied: bool = True
    # In place: every model and optimizer variable as the user left them.
    snapshot: VariableSnapshot | None = None

    def restore(self) -> None:
        """Put back every variable the in-place probe may have changed (no-op for a clone)."""
        if self.snapshot is not None:
            self.snapshot.restore()

    def close(self) -> None:
        """Drop the snapshot (after `restore()`: nothing can be restored afterwards)."""
        if self.snapshot is not None:
            self.snapshot.close()


def ensure_built(model: Any, x: Any) -> None:
    """Build an unbuilt model on the first batch, as the user's fit would.

    A model with its own train_step need not have a forward pass (a GAN or VAE
    built of sub-models has no call()): its fit builds only what the step
    uses, and so does the probe, which runs that step."""
    if not model.built or not model.weights:
        try:
            model(x)
        except Exception:
            if "train_step" not in custom_training(model):
                raise


def compiled_loss(model: Any) -> Any:
    """The loss the user passed to compile (None when compiled without one)."""
    config = getattr(model, "_compile_config", None)
    loss = getattr(model, "loss", None)
    if config is not None:
        loss = config.config.get("loss", loss)
    return loss


def custom_training(model: Any) -> list[str]:
    """The training methods the user's model class overrides (`train_step`,
    `compute_loss`): the probe runs its own step on the compiled loss instead."""
    found = []
    for name in ("train_step", "compute_loss"):
        owner = next((c for c in type(model).__mro__ if name in c.__dict__), None)
        if owner is not None and not owner.__module__.startswith(("keras.", "tf_keras.")):
            found.append(name)
    return found


def _user_loss_fn(model: Any) -> Any:
    """The user's compiled loss as a callable of our own, leaving the user's
    CompileLoss object unbuilt and untouched; None when compiled without a loss."""
    config = getattr(model, "_compile_config", None)
    loss = compiled_loss(model)
    loss_weights = config.config.get("loss_weights") if config is not None else None
    if loss is None:
        return None
    output_names = getattr(model, "output_names", None)
    return CompileLoss(loss, loss_weights, output_names=output_names)


def _copy_optimizer(user_opt: Any, variables: list[Any]) -> tuple[Any, bool]:
    """A fresh optimizer of the user's class and config, built on `variables`,
    carrying the user's slots and iteration count when it has any."""
    opt = user_opt.__class__.from_config(user_opt.get_config())
    opt.build(variables)
    src = list(getattr(user_opt, "variables", []))
    if not getattr(user_opt, "built", False) or not src:
        return opt, True
    dst = list(opt.variables)
    if len(src) != len(dst) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(src, dst, strict=True)):
        return opt, False
    for s, d in zip(src, dst, strict=True):
        d.assign(s.value)
    return opt, True


def make_target(model: Any, x: Any, seed_note: list[str] | None = None) -> ProbeTarget:
    """Clone the model (weights copied, optimizer state carried); fall back to
    probing in place behind a snapshot when the model cannot be cloned."""
    loss_fn = _user_loss_fn(model)
    user_opt = model.optimizer
    state = _state_bytes(model, user_opt)
    if state > CLONE_MAX_BYTES:
        return _in_place(
            model, user_opt, loss_fn,
            f"the model's weights and optimizer state take {state / 2**20:.0f} MB: probed "
            "in place rather than on a clone (which would double them), every variable "
            "restored afterwards",
        )
    try:
        clone = clone_with_weights(model, x)
        opt, copied = _copy_optimizer(user_opt, list(clone.trainable_variables))
        target = ProbeTarget(clone, opt, loss_fn, "clone", optimizer_state_copied=copied)
        if not copied:
            target.notes.append(
                "the optimizer's state could not be copied to the clone: update "
                "ratios are those of a freshly started optimizer"
            )
        return target
    except Exception as exc:  # noqa: BLE001 - any failure means: probe in place
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return _in_place(
        model, user_opt, loss_fn,
        f"the model could not be cloned ({reason}); probed in place and restored every variable",
    )


def clone_with_weights(model: Any, x: Any) -> Any:
    """A clone of the model (built on `x` if need be) with its weights, trainable
    flags, layer names and lookup tables; raises ValueError where the clone does
    not line up with the model. Under a strategy's scope, the clone's variables
    are the strategy's (mirrored)."""
    clone = keras.models.clone_model(model, recursive=True)
    if not clone.built or not clone.weights:
        clone(x)
    src, dst = model.weights, clone.weights
    if len(src) != len(dst) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(src, dst, strict=True)):
        raise ValueError("the clone's weights do not line up with the model's")
    if {id(v) for v in src} & {id(v) for v in dst}:
        raise ValueError("the clone shares weights with the model")
    for s, d in zip(src, dst, strict=True):
        d.assign(s.value)
    # Trainable flags set after construction are not all in the config:
    # copy them top-down (a container's flag propagates, then leaves override).
    originals = model._flatten_layers(include_self=True, recursive=True)
    copies = clone._flatten_layers(include_self=True, recursive=True)
    if len(originals) != len(copies):
        raise ValueError("the clone's layers do not line up with the model's")
    for layer, copy in zip(originals, copies, strict=True):
        if type(copy) is not type(layer):
            raise ValueError("the clone's layers do not line up with the model's")
        if copy.trainable != layer.trainable:
            copy.trainable = layer.trainable
        _copy_lookup_table(layer, copy)
        # A subclassed model's clone builds its sublayers anew, under fresh
        # auto-names (dense_7 for the user's dense): rows must carry the user's.
        if copy.name != layer.name:
            copy.name = layer.name
    if [tuple(v.shape) for v in model.trainable_variables] != [
        tuple(v.shape) for v in clone.trainable_variables
    ]:
        raise ValueError("the clone's trainable variables differ from the model's")
    return clone


def _copy_lookup_table(layer: Any, copy: Any) -> None:
    """A lookup layer's vocabulary (TextVectorization, StringLookup, IntegerLookup)
    lives in a table, not in variables: the clone's table is empty (its first call
    fails with "Table not initialized") until it gets the same vocabulary."""
    if not (hasattr(layer, "get_vocabulary") and hasattr(copy, "set_vocabulary")):
        return
    vocabulary = layer.get_vocabulary()
    try:
        if list(copy.get_vocabulary()) == list(vocabulary):
            return  # given in the layer's config: already there
    except Exception:  # noqa: BLE001 - an uninitialised table cannot even be read
        pass
    lookup = getattr(layer, "_lookup_layer", layer)
    idf = getattr(lookup, "idf_weights", None) if getattr(lookup, "output_mode", None) == "tf_idf" else None
    copy.set_vocabulary(vocabulary, idf_weights=None if idf is None else np.asarray(idf))


def _in_place(model: Any, user_opt: Any, loss_fn: Any, note: str) -> ProbeTarget:
    """The user's model and optimizer, every variable snapshotted first (on disk
    when large, see snapshot.py)."""
    optimizer = user_opt
    if user_opt is not None and not getattr(user_opt, "built", False):
        if "train_step" not in custom_training(model):
            user_opt.build(model.trainable_variables)  # its slots in the snapshot
        else:
            # A model with its own train_step: its step builds the optimizers it
            # uses on the variables it gives them (model.optimizer may be one it
            # never uses). Our steps train with an unbuilt copy: had they built
            # the user's, its slots (not in the snapshot) would have started the
            # user's fit from our steps' moments.
            optimizer = user_opt.__class__.from_config(user_opt.get_config())
            optimizer.build(model.trainable_variables)  # its slots in the snapshot too
    snapshot = VariableSnapshot(list(model.variables) + list(getattr(user_opt, "variables", []))
                                + (list(optimizer.variables) if optimizer is not user_opt else []))
    target = ProbeTarget(model, optimizer, loss_fn, "in-place", snapshot=snapshot)
    target.notes.append(note)
    return target


def _state_bytes(model: Any, optimizer: Any) -> int:
    """Bytes a clone would copy: the model's variables and the optimizer's (before
    it is built, its slots estimated as Adam's: two per trainable variable)."""
    weights = nbytes(list(model.variables))
    if getattr(optimizer, "built", False):
        return weights + nbytes(list(optimizer.variables))
    return weights + 2 * nbytes(list(model.trainable_variables))


@dataclass
class ReplicaTarget:
    """The probe target made again under the user's MirroredStrategy: its probe
    steps run on every replica (engine/replicas.py), then `hand_back` gives
    the target the state they left, for the experiments that follow."""

    model: Any
    optimizer: Any
    loss_fn: Any
    strategy: Any

    def hand_back(self, target: ProbeTarget) -> None:
        """The target's weights and optimizer state become this one's."""
        for src, dst in _paired(self.model.weights, target.model.weights):
            dst.assign(src.value)
        for src, dst in _paired(self.optimizer.variables, target.optimizer.variables):
            dst.assign(src.value)


def _paired(src: list[Any], dst: list[Any]) -> list[tuple[Any, Any]]:
    if len(src) != len(dst) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(src, dst, strict=True)):
        raise ValueError("the replicated probe's variables do not line up with the clone's")
    return list(zip(src, dst, strict=True))


def replica_target(target: ProbeTarget, user_model: Any, strategy: Any, x: Any, y: Any,
                   sw: Any) -> ReplicaTarget:
    """A clone of the target's model and optimizer (weights and state) made under
    `strategy`, whose variables are mirrored on its devices; its loss, the
    user's compiled loss, built on a row of (x, y, sw) (its trackers are
    variables: they must be the strategy's too)."""
    if target.mode != "clone":
        raise ValueError("the model is probed in place, not on a clone")
    with strategy.scope():
        clone = clone_with_weights(target.model, x)
        optimizer, copied = _copy_optimizer(target.optimizer, list(clone.trainable_variables))
        if not copied:
            raise ValueError("the optimizer's state could not be copied")
        _paired(optimizer.variables, target.optimizer.variables)
        loss_fn = _user_loss_fn(user_model)
        loss_fn(_first_row(y), clone(_first_row(x), training=False), _first_row(sw))
    return ReplicaTarget(clone, optimizer, loss_fn, strategy)


def _first_row(struct: Any) -> Any:
    return None if struct is None else tree.map_structure(lambda a: a[:1], struct)
