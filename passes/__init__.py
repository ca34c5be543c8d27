"""Compiler passes, one module per pass, installed as `stretchc.passes`. Importing this registers them."""

from stretchc.passes import (  # noqa: F401  (imported for registration)
    assign_delegates,
    emit_bundle,
    find_branches,
    insert_sync_points,
    outline_partitions,
    padv2_to_pad,
    quantize_partitions,
    ungroup_convs,
    unshare_pads,
)

DEFAULT_PIPELINE = "unshare-pads,find-branches,padv2-to-pad,assign-delegates,ungroup-convs,outline-partitions,quantize-partitions,insert-sync-points,emit-bundle"
