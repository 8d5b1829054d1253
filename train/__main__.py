"""``python -m train``: the tutorials' CIFAR-10 training, jit-compiled, on every local device.

Examples::

    python -m train                                   # Tudui, CIFAR-10, SGD lr 0.01, batch 64
    python -m train --model lenet --optimizer adam --lr 1e-3 --epochs 20 --workdir runs/lenet
    python -m train --dataset fake --epochs 1         # smoke run, no data needed

Offline: put the official cifar-10-binary.tar.gz in DATA_DIR/downloads/manual/ and pass
--data-dir DATA_DIR. Rerunning with the same --workdir resumes from the latest checkpoint.
Several hosts: start one process per host with the usual JAX cluster environment (SLURM, Open
MPI, or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID); jax.distributed is then
initialized and process 0 logs and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

MODELS = ("tudui", "lenet")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m train",
        description="Train a tutorial CNN on CIFAR-10 with cross-entropy (losses_jax), "
        "jit-compiled and data-parallel over all devices. Defaults are the PyTorch tutorials' "
        "recipe: Tudui, CIFAR-10, SGD, learning rate 0.01, batch 64.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dataset", choices=("cifar10", "fake"), default="cifar10",
                   help="cifar10: the real data through tensorflow-datasets; fake: random "
                   "CIFAR-shaped tfds mock data for smoke runs (no files, no network)")
    p.add_argument("--model", choices=MODELS, default="tudui",
                   help="tudui: the tutorials' 3-conv network; lenet: the LeNet-like variant")
    p.add_argument("--epochs", type=int, default=10, help="total passes over the training set "
                   "(a resumed run stops at this total)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="global batch size; must be divisible by the number of devices")
    p.add_argument("--lr", type=float, default=0.01, help="constant learning rate")
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="sgd",
                   help="sgd: plain SGD (the tutorials'); momentum: SGD with momentum 0.9; adam")
    p.add_argument("--workdir", default=None,
                   help="directory for TensorBoard scalars and orbax checkpoints (every epoch, "
                   "last 3 kept); rerunning with it resumes. None: no logs, no checkpoints")
    p.add_argument("--data-dir", default=None,
                   help="tensorflow-datasets data dir (default $TFDS_DATA_DIR or "
                   "~/tensorflow_datasets); offline, put cifar-10-binary.tar.gz in "
                   "DATA_DIR/downloads/manual/")
    p.add_argument("--no-download", action="store_true",
                   help="never use the network: CIFAR-10 must already be prepared in the data dir "
                   "or its archive be in DATA_DIR/downloads/manual/")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the parameter initialization and the shuffling: same seed, same "
                   "machine, same losses")
    p.add_argument("--fake-size", type=int, default=512, help="examples per split for --dataset fake")
    p.add_argument("--steps-per-call", type=int, default=None,
                   help="training steps between two looks of the host at the losses (progress "
                   "bar, NaN check). None: about 1/20 of an epoch")
    return p.parse_args(argv)


def _maybe_distributed():
    """jax.distributed.initialize() when launched as one of several processes."""
    env = os.environ
    several = (
        "JAX_COORDINATOR_ADDRESS" in env
        or int(env.get("SLURM_NTASKS", "1")) > 1
        or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
    )
    if several:
        import jax

        jax.distributed.initialize()


def main(argv=None) -> int:
    args = parse_args(argv)
    _maybe_distributed()

    import jax
    from flax import nnx

    import models

    from . import CheckpointError, DataUnavailableError, NonFiniteLossError, fit, load_dataset

    main_process = jax.process_index() == 0
    say = print if main_process else (lambda *a, **k: None)
    t0 = time.perf_counter()
    try:
        train_data, test_data = load_dataset(args.dataset, args.data_dir, fake_size=args.fake_size,
                                             download=not args.no_download)
    except DataUnavailableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    say(f"{args.dataset}: {len(train_data[0])} train / {len(test_data[0])} test images "
        f"(loaded in {time.perf_counter() - t0:.1f} s); {jax.device_count()} device(s): "
        f"{jax.devices()[0].platform}", flush=True)

    cls = {"tudui": models.Tudui, "lenet": models.LeNet}[args.model]
    model = cls(rngs=nnx.Rngs(args.seed))
    try:
        fit(model, train_data, test_data, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.lr, optimizer=args.optimizer, seed=args.seed, workdir=args.workdir,
            steps_per_call=args.steps_per_call, verbose=True)
    except (CheckpointError, NonFiniteLossError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
