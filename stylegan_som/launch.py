"""Starting the training processes: one in this process, N spawned (--gpus=N, one per GPU or CPU processes over
gloo), or those torchrun started; and the one-line exits of a process that stopped for a known reason."""

import os
import signal
import tempfile

import torch

import dnnlib
from torch_utils import custom_ops
from torch_utils import dist_util
from torch_utils import training_stats
from stylegan_som.config.rundir import create_run_dir, fetch_resume_pkl, pick_run_dir
from stylegan_som.config.spec import UserError

# Exit code of a process stopped by bad data found during training (click's usage errors exit with 2).
DATA_ERROR_EXIT = 3
# Exit code of a run stopped because a loss or a weight turned NaN or infinite (stylegan_som.nonfinite).
NONFINITE_EXIT = 4
# Exit code of a run stopped because a snapshot could not be written (disk full, ...).
SNAPSHOT_ERROR_EXIT = 5
# Exit code of a process of a multi-process run whose peers were lost (torch_utils.dist_util).
PEER_LOST_EXIT = dist_util.PEER_LOST_EXIT
# Exits after which a process has said why in one line.
KNOWN_EXITS = (2, DATA_ERROR_EXIT, NONFINITE_EXIT, SNAPSHOT_ERROR_EXIT, PEER_LOST_EXIT, 128 + signal.SIGTERM,
    128 + signal.SIGINT)

def torchrun_env():
    """(rank, local_rank, world_size) when started by torchrun (or another env:// launcher), else None."""
    return dist_util.env_ranks()

def check_settings(num_gpus, dist_env):
    """Before any process starts: the distributed settings of the environment a multi-process run reads
    ($SGSOM_DIST_TIMEOUT); a bad one is a UserError naming it."""
    if num_gpus > 1 or dist_env is not None:
        try:
            dist_util.collective_timeout()
        except dist_util.DistConfigError as err:
            raise UserError(str(err)) from None

def _init_distributed(rank, num_gpus, temp_dir, device):
    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
    init_method = ('file:///' + init_file.replace('\\', '/')) if os.name == 'nt' else f'file://{init_file}'
    if os.name == 'nt':
        backend = 'gloo'
    dist_util.init_process_group(backend, init_method, rank=rank, world_size=num_gpus)

def device_for(local_rank, device_type):
    if device_type == 'cuda':
        torch.cuda.set_device(local_rank)
        return torch.device('cuda', local_rank)
    return torch.device('cpu')

def subprocess_fn(rank, args, temp_dir, device_type='cuda', callbacks_fn=None):
    """One training process of a --gpus=N launch (or the only one). callbacks_fn(metric names) -> the
    training loop's snapshot callbacks (train.py: metrics.metric_main.training_callbacks)."""
    dnnlib.util.Logger(file_name=os.path.join(args.run_dir, 'log.txt'), file_mode='a', should_flush=True)
    device = device_for(rank, device_type)
    if args.num_gpus > 1:
        _init_distributed(rank, args.num_gpus, temp_dir, device)
        if device_type == 'cpu':
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.num_gpus)) # processes share the cores
    run(rank, args, device, callbacks_fn)

def data_error_line(err):
    """The dataset's own one-line message, also when a DataLoader worker raised it: the main process then
    re-raises it with the worker's traceback as its text, and the message is that traceback's last line."""
    lines = str(err).strip().splitlines() or ['']
    prefix = f'{type(err).__module__}.{type(err).__name__}: '
    if len(lines) > 1 and lines[-1].startswith(prefix):
        return lines[-1][len(prefix):]
    return ' '.join(line.strip() for line in lines)

def _known_errors():
    """(exception class, exit code, line, whether only rank 0 says it) of the errors a run stops on in one line."""
    from stylegan_som.data import DatasetError # pylint: disable=import-outside-toplevel
    from stylegan_som.legacy import NetworkPickleError # pylint: disable=import-outside-toplevel
    from stylegan_som.nonfinite import NonFiniteError # pylint: disable=import-outside-toplevel
    from stylegan_som.snapshot import SnapshotWriteError # pylint: disable=import-outside-toplevel
    return [
        # A file that passed the header check at start-up but cannot be decoded (e.g. truncated).
        (DatasetError, DATA_ERROR_EXIT, lambda err: f'Error: --data: {data_error_line(err)}', False),
        (NetworkPickleError, 2, lambda err: f'Error: --resume: {err}', True), # a --resume URL, loaded only here
        (NonFiniteError, NONFINITE_EXIT, lambda err: f'Error: {err} (try lower --glr/--dlr, or a larger --gamma)', True),
        (SnapshotWriteError, SNAPSHOT_ERROR_EXIT, lambda err: f'Error: {err}', False),
    ]

def run(rank, args, device, callbacks_fn=None):
    from stylegan_som import interrupt, training_loop # pylint: disable=import-outside-toplevel
    training_stats.init_multiprocessing(rank=rank, sync_device=(device if args.num_gpus > 1 else None))
    if rank != 0:
        custom_ops.verbosity = 'none'
    errors = _known_errors()
    exit_code = None # set when the process ends with a code of its own
    together = True  # whether every rank ends here at the same step (then they pass a last barrier together)
    try:
        with interrupt.StopOnSignal() as stop: # SIGTERM/SIGINT: finish the step, write a snapshot, exit 143/130
            loop_args = dict(args)
            names = loop_args.pop('metrics', [])
            assert callbacks_fn is not None or not names, 'metrics need a callbacks_fn'
            callbacks = callbacks_fn(names) if callbacks_fn is not None else []
            training_loop.training_loop(rank=rank, device=device, stop_fn=stop.requested, snapshot_callbacks=callbacks,
                **loop_args)
    except interrupt.Interrupted as err:
        if rank == 0:
            print(err)
        exit_code = err.exit_code # every rank stops at the same agreed step
    except tuple(cls for cls, _, _, _ in errors) as err:
        for cls, code, line, rank0_only in errors:
            if isinstance(err, cls):
                if rank == 0 or not rank0_only:
                    print(line(err))
                exit_code, together = code, False # an error of this rank's own; the others may be anywhere
                break
    except Exception as err: # pylint: disable=broad-except
        if args.num_gpus > 1 and dist_util.is_peer_failure(err):
            print(dist_util.peer_failure_line(err, rank)) # no teardown: the others are gone or stuck
            dist_util.leave(PEER_LOST_EXIT)
        if args.num_gpus > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        raise
    if args.num_gpus > 1:
        dist_util.end_run(rank, together, exit_code or 0) # barrier, destroy, flush, os._exit: does not return
    if exit_code is not None:
        raise SystemExit(exit_code) from None

def launch(args, device_type, callbacks_fn=None):
    """Run training in this process, or spawn --gpus processes that stop together."""
    with tempfile.TemporaryDirectory() as temp_dir:
        if args.num_gpus == 1:
            subprocess_fn(rank=0, args=args, temp_dir=temp_dir, device_type=device_type, callbacks_fn=callbacks_fn)
            return
        from stylegan_som import interrupt # pylint: disable=import-outside-toplevel
        try:
            procs = torch.multiprocessing.spawn(fn=subprocess_fn, args=(args, temp_dir, device_type, callbacks_fn), nprocs=args.num_gpus, join=False)
            with interrupt.ForwardSignals([p.pid for p in procs.processes]): # the processes stop together, with a snapshot
                while not procs.join():
                    pass
        except torch.multiprocessing.ProcessExitedException as err:
            if err.exit_code not in KNOWN_EXITS:
                raise
            raise SystemExit(err.exit_code) from None # the process said why in one line

def launch_torchrun(args, run_desc, outdir, dist_env, device_type, summary, callbacks_fn=None):
    """Processes already exist; rank 0 names and creates the run directory and tells the others. `summary(args)`
    prints the options on rank 0."""
    rank, local_rank, world_size = dist_env
    device = device_for(local_rank, device_type)
    dist_util.init_process_group(('nccl' if device_type == 'cuda' else 'gloo'), 'env://')
    box = [None]
    if rank == 0:
        args.run_dir = pick_run_dir(outdir, run_desc)
        summary(args)
        try:
            fetch_resume_pkl(args)
            create_run_dir(args)
        except UserError as err:
            print(f'Error: {err}')
            args.run_dir = None # the other ranks stop too
        box = [args.run_dir]
    torch.distributed.broadcast_object_list(box, src=0)
    if box[0] is None:
        torch.distributed.destroy_process_group()
        raise SystemExit(2)
    args.run_dir = box[0]
    dnnlib.util.Logger(file_name=os.path.join(args.run_dir, 'log.txt'), file_mode='a', should_flush=True)
    if device_type == 'cpu':
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(int(os.environ.get('LOCAL_WORLD_SIZE', world_size)), 1)))
    run(rank, args, device, callbacks_fn)
