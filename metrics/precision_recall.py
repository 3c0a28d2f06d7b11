"""Improved precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models"): a sample lies on a manifold if it is within the k-th nearest-neighbour radius of some point of
that manifold, in VGG16 feature space. Precision: generated samples on the real manifold; recall: the reverse."""

import torch

from . import metric_utils

#----------------------------------------------------------------------------

def compute_distances(row_features, col_features, num_gpus, rank, col_batch_size):
    """Pairwise L2 distances [rows, cols], the column batches shared out over the GPUs; the result is on rank 0."""
    assert 0 <= rank < num_gpus
    num_cols = col_features.shape[0]
    num_batches = ((num_cols - 1) // col_batch_size // num_gpus + 1) * num_gpus # a multiple of num_gpus
    col_batches = torch.nn.functional.pad(col_features, [0, 0, 0, -num_cols % num_batches]).chunk(num_batches)
    dist_batches = []
    for col_batch in col_batches[rank :: num_gpus]:
        dist_batch = _cdist(row_features, col_batch)
        for src in range(num_gpus):
            dist_broadcast = dist_batch.clone()
            if num_gpus > 1:
                torch.distributed.broadcast(dist_broadcast, src=src)
            dist_batches.append(dist_broadcast.cpu() if rank == 0 else None)
    return torch.cat(dist_batches, dim=1)[:, :num_cols] if rank == 0 else None

def _cdist(x, y):
    if x.dtype == torch.float16 and x.device.type == 'cpu':
        # CPU cdist has no half kernel; compute in float32 and round like a half result would be.
        return torch.cdist(x.float().unsqueeze(0), y.float().unsqueeze(0))[0].to(torch.float16)
    return torch.cdist(x.unsqueeze(0), y.unsqueeze(0))[0]

def precision_recall_from_features(real_features, gen_features, nhood_size, row_batch_size, col_batch_size, num_gpus=1, rank=0):
    """(precision, recall) of feature sets given as tensors; every rank must call it, rank 0 gets the numbers."""
    results = dict()
    for name, manifold, probes in [('precision', real_features, gen_features), ('recall', gen_features, real_features)]:
        # Radius of each manifold point: distance to its k-th nearest neighbour (kthvalue k+1 skips itself).
        kth = []
        for manifold_batch in manifold.split(row_batch_size):
            dist = compute_distances(row_features=manifold_batch, col_features=manifold, num_gpus=num_gpus, rank=rank, col_batch_size=col_batch_size)
            kth.append(dist.to(torch.float32).kthvalue(nhood_size + 1).values.to(torch.float16) if rank == 0 else None)
        kth = torch.cat(kth) if rank == 0 else None
        pred = []
        for probes_batch in probes.split(row_batch_size):
            dist = compute_distances(row_features=probes_batch, col_features=manifold, num_gpus=num_gpus, rank=rank, col_batch_size=col_batch_size)
            pred.append((dist <= kth).any(dim=1) if rank == 0 else None)
        results[name] = float(torch.cat(pred).to(torch.float32).mean() if rank == 0 else 'nan')
    return results['precision'], results['recall']

def compute_pr(opts, max_real, num_gen, nhood_size, row_batch_size, col_batch_size):
    detector_url = metric_utils.VGG16_URL
    detector_kwargs = dict(return_features=True)

    # Features are compared in float16, as upstream does (it halves memory for 200k x 50k distance tables).
    real_features = metric_utils.compute_feature_stats_for_dataset(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=0, capture_all=True, max_items=max_real).get_all_torch().to(torch.float16).to(opts.device)

    gen_features = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=1, capture_all=True, max_items=num_gen).get_all_torch().to(torch.float16).to(opts.device)

    return precision_recall_from_features(real_features, gen_features, nhood_size=nhood_size,
        row_batch_size=row_batch_size, col_batch_size=col_batch_size, num_gpus=opts.num_gpus, rank=opts.rank)

#----------------------------------------------------------------------------
