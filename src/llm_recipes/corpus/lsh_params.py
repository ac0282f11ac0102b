"""MinHash LSH parameters of the corpus stage: the S-curve of buckets x rows (hashes per bucket), its false-positive
and false-negative areas, and the choice of buckets x rows for a Jaccard threshold (text-dedup's optimal_param)."""

import dataclasses

from llm_recipes.errors import RecipeError


def minhash_curve(buckets, rows, points=(0.7, 0.8, 0.9)):
    """LSH S-curve: P(a pair of Jaccard s shares a bucket) = 1 - (1 - s^r)^b; threshold ~ (1/b)^(1/r)."""
    return (1 / buckets) ** (1 / rows), {s: 1 - (1 - s ** rows) ** buckets for s in points}


def scurve_areas(threshold, buckets, rows):
    """The S-curve's false-positive area (P(candidate) over Jaccard [0, threshold]) and false-negative area
    (1 - P(candidate) over [threshold, 1]), by scipy.integrate.quad, as text-dedup's optimal_param integrates them."""
    from scipy.integrate import quad

    def p(s):
        return 1 - (1 - s ** rows) ** buckets

    return quad(p, 0, threshold)[0], quad(lambda s: 1 - p(s), threshold, 1)[0]


def minhash_params(threshold, num_perm, false_negative_weight, buckets=None, rows=None):
    """buckets x rows (hashes per bucket) with buckets * rows <= num_perm minimising
    (1 - w) * false-positive area + w * false-negative area (w = false_negative_weight), like text-dedup's
    optimal_param; a value given is kept and only the other is searched. Returns (buckets, rows, fp area, fn area)."""
    best = None
    for b in [buckets] if buckets else range(1, num_perm + 1):
        for r in [rows] if rows else range(1, num_perm // b + 1):
            fp, fn = scurve_areas(threshold, b, r)
            error = (1 - false_negative_weight) * fp + false_negative_weight * fn
            if best is None or error < best[0]:
                best = (error, b, r, fp, fn)
    return best[1:]


def choose_minhash(args):
    """buckets x hashes per bucket: as given when both are set, else chosen from minhash_threshold (minhash_params
    above); returns args with both set, and how they were chosen."""
    weight = args.minhash_false_negative_weight
    if weight is None:
        weight = 0.95 if args.minhash_verify else 0.5
    if not 0 < args.minhash_threshold < 1 or not 0 < weight < 1:
        raise RecipeError("minhash_threshold and minhash_false_negative_weight must lie strictly between 0 and 1")
    given = {"buckets": args.minhash_buckets, "hashes_per_bucket": args.minhash_hashes_per_bucket}
    if all(given.values()):
        chosen_by = "set in the recipe"
        buckets, rows = given.values()
    else:
        buckets, rows, _, _ = minhash_params(args.minhash_threshold, args.minhash_num_perm, weight, *given.values())
        chosen_by = f"chosen for Jaccard {args.minhash_threshold}, false-negative weight {weight}"
    return dataclasses.replace(args, minhash_buckets=buckets, minhash_hashes_per_bucket=rows), chosen_by
