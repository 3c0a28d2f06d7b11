"""Whether a coupled generator's pairs correspond (--data2, stylegan_som/networks/coupled.py), for the built-in
pairs of domains, read by fixed rules plus the digit classifier of mode_coverage.py.

G draws pairs [N, 2, H, W] in [-1, 1] (A's channel, then B's), quantised to 8 bits as saved samples are.
* `pairs_mnist_negative` (--data=mnist --data2=mnist-negative): a pair matches if the digit's pixels (>= 128) of
  A and of 255 - B overlap with an intersection over union above NEGATIVE_TOLERANCE (a blank grey pair has no
  ink in 255 - B: no match).
* `pairs_mnist_edges` (--data2=mnist-edges): a pair matches if the intersection over union of the edge map of A
  (stylegan_som.data.coupled.edges, as the data was made) and B binarised at 128 exceeds EDGES_TOLERANCE.
Only pairs whose A is digit-like count (ink on INK_RANGE of the pixels: a blank grey pair is its own negative).
Each reports the share of matching pairs whose A the classifier reads as a digit with confidence (>= 0.9, as
mode_coverage's `_hq`; the name itself), the distinct digits the classifier reads in A and in
B (`_modes_a`, `_modes_b`; B mapped back first: 255 - B for negatives, edge maps read as they are) and the share
of pairs whose two digits it reads alike (`_agree`). Two independent generators (--couple=none) are the floor:
their pairs match only by chance, about 0 for the shares and 0.1 for the agreement of uniform digits."""

import numpy as np
import torch

from stylegan_som.data import coupled
from . import mode_coverage

NEGATIVE_TOLERANCE = 0.5 # IoU of A's ink and 255 - B's above this is a match
EDGES_TOLERANCE = 0.5   # IoU of edges(A) and B >= 128 above this is a match

def to_uint8_pairs(images):
    """[N, 2, H, W] in [-1, 1] -> uint8 numpy, rounded as saved samples are."""
    if images.ndim != 4 or images.shape[1] != 2:
        raise ValueError(f'the pairs metrics need pairs of one-channel images [N, 2, H, W], got {list(images.shape)}')
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()

INK_RANGE = (0.02, 0.5) # A's share of digit pixels (>= 128); MNIST's digits cover about 0.1 to 0.3

def digit_like(a):
    """bool [N]: images uint8 [N, H, W] whose ink covers a digit's share of the image (a blank or grey one does not)."""
    ink = (a >= coupled.EDGE_LEVEL).reshape(len(a), -1).mean(1)
    return (ink >= INK_RANGE[0]) & (ink <= INK_RANGE[1])

def _iou_above(mask_a, mask_b, level):
    inter = (mask_a & mask_b).reshape(len(mask_a), -1).sum(1)
    union = (mask_a | mask_b).reshape(len(mask_a), -1).sum(1)
    return inter > level * np.maximum(union, 1)

def match_negative(a, b):
    """bool [N]: pairs uint8 [N, H, W] where the ink of A (>= 128) and of 255 - B overlap with IoU above
    NEGATIVE_TOLERANCE."""
    return _iou_above(a >= coupled.EDGE_LEVEL, coupled.negative(b) >= coupled.EDGE_LEVEL, NEGATIVE_TOLERANCE)

def match_edges(a, b):
    """bool [N]: pairs uint8 [N, H, W] where the edge map of A and B >= 128 overlap with IoU above EDGES_TOLERANCE."""
    return _iou_above(coupled.edges(a) > 0, b >= coupled.EDGE_LEVEL, EDGES_TOLERANCE)

DOMAINS = {'negative': (match_negative, coupled.negative), 'edges': (match_edges, lambda b: b)}

def score_pairs(pairs, domain, classifier=None):
    """dict(match, modes_a, modes_b, agree) for uint8 pairs [N, 2, H, W]; without a classifier only `match`."""
    match, back = DOMAINS[domain]
    a, b = pairs[:, 0], pairs[:, 1]
    matched = match(a, b) & digit_like(a)
    out = dict(match=float(matched.mean()))
    if classifier is not None:
        read = lambda x: mode_coverage.read_mnist(torch.from_numpy(np.ascontiguousarray(x)[:, None]), classifier)
        read_a, read_b = read(a), read(back(b))
        # Only a digit counts: blank grey pairs (an untrained G's) are their own negatives.
        out.update(match=float((matched & (read_a[:, 1] == 1)).mean()), modes_a=int(np.unique(read_a[:, 0]).size),
            modes_b=int(np.unique(read_b[:, 0]).size), agree=float((read_a[:, 0] == read_b[:, 0]).mean()))
    return out

def compute_pairs(opts, domain, num_gen=2000, batch_size=250):
    if opts.rank != 0:
        return dict(match=float('nan'), modes_a=float('nan'), modes_b=float('nan'), agree=float('nan'))
    classifier = mode_coverage.get_mnist_classifier(device=opts.device, verbose=opts.progress.verbose)
    pairs = mode_coverage._generate(opts, num_gen, batch_size, to_uint8_pairs) # pylint: disable=protected-access
    return score_pairs(pairs, domain, classifier)
