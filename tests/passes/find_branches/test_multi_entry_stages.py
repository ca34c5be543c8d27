"""find-branches on small hand-written graphs: multi-entry stages (parallel paths that start at different
tensors: a feature pyramid, a text detector's neck) next to the fork-join stages it found before, and the
shapes that must stay in the trunk. Every result is checked to have convex regions listed in a topological
order of the region graph."""

from __future__ import annotations

from stretchc.costmodel.grouping import Dag
from stretchc.ir import Module
from stretchc.irtext import parse_module
from stretchc.passes.find_branches import FindBranches
from stretchc.passmanager import PassContext

SHAPE = [1, 8, 8, 4]
WEIGHTS = {"CONV_2D": "%w3", "CONV_1x1": "%w1"}  # a 3x3 conv, and a 1x1 one (a residual shortcut's shape)


def _module(lines: list[str], outputs: tuple[str, ...]) -> Module:
    """A module from `OUT = OP(IN, ...)` lines over the model input `x` (every value [1, 8, 8, 4]; CONV_2D reads a
    3x3 weight, CONV_1x1 a 1x1 one)."""
    dims = ",".join(map(str, SHAPE))
    info = '{"dtype":"float32","layout":"NHWC","name":"%s","perm":[0,1,2,3],"shape":[%s]}'
    text = ['# stretchc IR v1', 'module "m"', f"input %x: f32[{dims}] {info % ('x', dims)}",
            "const %w3: f32[4,3,3,4] = sha256:0000000000000000", "const %w1: f32[4,1,1,4] = sha256:0000000000000001"]
    for line in lines:
        out, call = (s.strip() for s in line.split("="))
        op, args = call.rstrip(")").split("(")
        ins = [f"%{a.strip()}" for a in args.split(",")] + ([WEIGHTS[op]] if op in WEIGHTS else [])
        text.append(f"%{out}: f32[{dims}] = tfl.{'CONV_2D' if op in WEIGHTS else op}({', '.join(ins)}) {{}}")
    text += [f"output %{o} {info % (o, dims)}" for o in outputs]
    m = parse_module("\n".join(text) + "\n")
    FindBranches().run(m, PassContext())
    return m


def _stages(*branches: int, head: bool = True) -> list[str]:
    """The region names of stages with these branch counts: stem, s<k>.b<j>..., s<k>.join, ..., and head."""
    names = ["stem"]
    for k, n in enumerate(branches, start=1):
        names += [f"s{k}.b{j}" for j in range(n)] + [f"s{k}.join"]
    return names + ["head"] * head


def _found(lines: list[str], outputs: tuple[str, ...], regions: list[str], where: dict[str, str]) -> None:
    """find-branches on the graph of `lines` gives `regions` (in this order) and puts each value of `where` in its
    region; every region is convex and the regions are listed in a topological order of the region graph (what
    placement, grouping and outline-partitions rely on)."""
    m = _module(lines, outputs)
    assert [r.name for r in m.regions] == regions
    got = {n.outputs[0].name: str(n.region) for n in m.graph.nodes}
    assert {v: got[v] for v in where} == where
    names = [r.name for r in m.regions]
    pairs = {(v.producer.region, n.region) for n in m.graph.nodes for v in n.inputs
             if v is not None and v.producer is not None and v.producer.region != n.region}
    assert all(names.index(s) < names.index(d) for s, d in pairs), sorted(pairs)
    dag = Dag(names, pairs)  # type: ignore[arg-type]
    assert all(dag.convex([r]) for r in names)


# A pyramid: backbone c2 -> c5, per scale a lateral path (two convs, upsampling but at c2), one concat, a head.
PYRAMID = [
    "s = CONV_2D(x)",
    "c2 = CONV_2D(s)", "c3 = CONV_2D(c2)", "c4 = CONV_2D(c3)", "c5 = CONV_2D(c4)",
    "l2 = CONV_1x1(c2)", "p2 = CONV_2D(l2)",
    "l3 = CONV_1x1(c3)", "q3 = CONV_2D(l3)", "p3 = RESIZE_NEAREST_NEIGHBOR(q3)",
    "l4 = CONV_1x1(c4)", "q4 = CONV_2D(l4)", "p4 = RESIZE_NEAREST_NEIGHBOR(q4)",
    "l5 = CONV_1x1(c5)", "q5 = CONV_2D(l5)", "p5 = RESIZE_NEAREST_NEIGHBOR(q5)",
    "cat = CONCATENATION(p5, p4, p3, p2)", "y = CONV_2D(cat)",
]


def test_a_pyramid_is_a_multi_entry_stage_with_a_branch_per_scale() -> None:
    # c2 forks into its lateral and the backbone, but the backbone feeds the concat from c3, c4 and c5: the
    # lateral paths are the branches. c5 only feeds its lateral, so it runs in that branch; c3 and c4 feed two
    # branches: they stay in the trunk (the stem).
    where = dict.fromkeys(("s", "c2", "c3", "c4"), "stem") | dict.fromkeys(("c5", "l5", "q5", "p5"), "s1.b0")
    where |= dict.fromkeys(("l4", "q4", "p4"), "s1.b1") | dict.fromkeys(("l3", "q3", "p3"), "s1.b2")
    where |= {"l2": "s1.b3", "p2": "s1.b3", "cat": "s1.join", "y": "head"}
    _found(PYRAMID, ("y",), _stages(4), where)


def test_a_branch_may_read_several_entries_computed_at_different_times() -> None:
    # A text detector's neck (PP-OCR's): the finest path adds its lateral to the upsampled coarser scale, so
    # it reads c2 (early) and t3 (late); t3 also feeds its own path, so it stays in the trunk.
    lines = [
        "c2 = CONV_2D(x)", "c3 = CONV_2D(c2)", "c4 = CONV_2D(c3)",
        "t4 = CONV_1x1(c4)", "u4 = RESIZE_NEAREST_NEIGHBOR(t4)", "l3 = CONV_1x1(c3)", "t3 = ADD(l3, u4)",
        "p4 = CONV_2D(t4)", "p3 = CONV_2D(t3)",
        "u3 = RESIZE_NEAREST_NEIGHBOR(t3)", "l2 = CONV_1x1(c2)", "t2 = ADD(l2, u3)", "p2 = CONV_2D(t2)",
        "cat = CONCATENATION(p4, p3, p2)",
    ]
    where = {"p4": "s1.b0", "p3": "s1.b1"} | dict.fromkeys(("u3", "l2", "t2", "p2"), "s1.b2")
    _found(lines, ("cat",), _stages(3, head=False), where | dict.fromkeys(("c2", "c3", "c4", "t4", "u4", "l3", "t3"), "stem"))


def test_two_input_multi_entry_joins_stay_in_the_trunk() -> None:
    # a NAS cell's pairwise combination or a pyramid's top-down add (h: paths from a and b), and a two-scale
    # concat (y: h and c)
    lines = ["a = CONV_2D(x)", "b = CONV_2D(a)", "c = CONV_2D(b)", "f = CONV_2D(a)", "g = CONV_2D(b)", "h = ADD(f, g)",
             "y = CONCATENATION(h, c)"]
    _found(lines, ("y",), ["main"], {})


def test_identity_and_shared_join_inputs_make_no_stage() -> None:
    # fewer than three branches beside the pass-through inputs: a U-Net skip (c3 enters the concat as it is) ...
    skip = ["c2 = CONV_2D(x)", "c3 = CONV_2D(c2)", "d = CONV_2D(c3)", "e = CONV_2D(c2)", "cat = CONCATENATION(c3, d, e, c2)"]
    _found(skip, ("cat",), ["main"], {})
    # ... and a join input that a later node reads too (two branches beside it)
    shared = ["a = CONV_2D(x)", "b = CONV_2D(a)", "c = CONV_2D(b)", "d = CONV_2D(a)", "e = CONV_2D(b)",
              "cat = CONCATENATION(c, d, e)", "y = ADD(cat, e)"]
    _found(shared, ("y",), ["main"], {})


def test_nasnet_cells_are_stages_with_pass_through_inputs() -> None:
    # A normal cell: five pairwise combinations of h and p, concatenated with p itself (an identity input);
    # p and h feed several combinations, so they stay in the trunk.
    normal = [
        "ip = CONV_2D(x)", "p = CONV_1x1(x)", "h = CONV_1x1(ip)",
        "a1 = CONV_2D(h)", "b1 = CONV_2D(p)", "x1 = ADD(a1, b1)",
        "a2 = CONV_2D(p)", "b2 = CONV_2D(p)", "x2 = ADD(a2, b2)",
        "a3 = AVERAGE_POOL_2D(h)", "x3 = ADD(a3, p)",
        "a4 = AVERAGE_POOL_2D(p)", "b4 = AVERAGE_POOL_2D(p)", "x4 = ADD(a4, b4)",
        "a5 = CONV_2D(h)", "x5 = ADD(a5, h)",
        "cat = CONCATENATION(p, x1, x2, x3, x4, x5)", "y = CONV_2D(cat)",
    ]
    where = dict.fromkeys(("ip", "p", "h"), "stem") | {"cat": "s1.join", "y": "head"}
    for j, k in enumerate("12345"):
        where |= {f"a{k}": f"s1.b{j}", f"x{k}": f"s1.b{j}"}
    _found(normal, ("y",), _stages(5), where | {"b1": "s1.b0", "b2": "s1.b1", "b4": "s1.b3"})
    # A reduction cell: x2 is concatenated and added into x4 too, and x1 feeds two combinations: both stay in
    # the trunk, and the three combinations only the concat reads are the branches.
    reduction = [
        "p = CONV_1x1(x)", "h = CONV_1x1(p)",
        "a1 = CONV_2D(h)", "b1 = CONV_2D(p)", "x1 = ADD(a1, b1)",
        "a2 = MAX_POOL_2D(h)", "b2 = CONV_2D(p)", "x2 = ADD(a2, b2)",
        "a3 = AVERAGE_POOL_2D(h)", "b3 = CONV_2D(p)", "x3 = ADD(a3, b3)",
        "a4 = AVERAGE_POOL_2D(x1)", "x4 = ADD(a4, x2)",
        "a5 = CONV_2D(x1)", "b5 = MAX_POOL_2D(h)", "x5 = ADD(a5, b5)",
        "cat = CONCATENATION(x2, x3, x4, x5)",
    ]
    where = dict.fromkeys(("p", "h", "a1", "b1", "x1", "a2", "b2", "x2"), "stem") | {"cat": "s1.join"}
    where |= dict.fromkeys(("a3", "b3", "x3"), "s1.b0") | dict.fromkeys(("a4", "x4"), "s1.b1") | dict.fromkeys(("a5", "b5", "x5"), "s1.b2")
    _found(reduction, ("cat",), _stages(3, head=False), where)


def test_a_fork_nested_in_a_branch_keeps_its_fork_join_stage() -> None:
    # Inception's expanded block: the converter merges the 1x3/3x1 pair's concat into the join, so the join has
    # five inputs, but the pair starts at one tensor (n): four fork-join branches, as before.
    lines = [
        "s = CONV_2D(x)",
        "b0 = CONV_1x1(s)", "n = CONV_1x1(s)", "n13 = CONV_2D(n)", "n31 = CONV_2D(n)",
        "m0 = CONV_1x1(s)", "m1 = CONV_2D(m0)", "pool = AVERAGE_POOL_2D(s)", "b3 = CONV_1x1(pool)",
        "cat = CONCATENATION(b0, n13, n31, m1, b3)", "y = CONV_2D(cat)",
    ]
    _found(lines, ("y",), _stages(4), dict.fromkeys(("n", "n13", "n31"), "s1.b1"))


def test_fork_join_and_multi_entry_stages_are_numbered_in_execution_order() -> None:
    # a fork-join stage in the backbone (between c3 and c4), then the pyramid's multi-entry stage, whose
    # finest branches read the stem
    lines = [
        "c2 = CONV_2D(x)", "c3 = CONV_2D(c2)", "m = CONV_2D(c3)",
        "i0 = CONV_1x1(m)", "i1 = CONV_2D(m)", "i2 = AVERAGE_POOL_2D(m)", "c4 = CONCATENATION(i0, i1, i2)",
        "c5 = CONV_2D(c4)",
        "l2 = CONV_2D(c2)", "l3 = CONV_2D(c3)", "l4 = CONV_2D(c4)", "l5 = CONV_2D(c5)",
        "cat = CONCATENATION(l5, l4, l3, l2)",
    ]
    where = {"c2": "stem", "c3": "stem", "c4": "s1.join", "l2": "s2.b3", "l3": "s2.b2", "l4": "s2.b1", "l5": "s2.b0", "c5": "s2.b0"}
    _found(lines, ("cat",), _stages(3, 4, head=False), where)


def test_a_stage_in_another_stages_trunk_is_a_stage_too() -> None:
    # a three-path multi-entry ADD tree computes the trunk value t that the next stage's paths read (with c,
    # which the backbone computed before it)
    lines = [
        "a = CONV_2D(x)", "b = CONV_2D(a)", "c = CONV_2D(b)",
        "fa = CONV_2D(a)", "fb = CONV_2D(b)", "fc = CONV_2D(c)", "s1 = ADD(fa, fb)", "t = ADD(s1, fc)",
        "d = CONV_2D(t)", "ga = CONV_2D(t)", "gb = CONV_2D(d)", "gc = CONV_2D(c)",
        "cat = CONCATENATION(ga, gb, gc)",
    ]
    where = {"c": "stem", "fa": "s1.b0", "fb": "s1.b1", "fc": "s1.b2", "s1": "s1.join", "t": "s1.join"}
    _found(lines, ("cat",), _stages(3, 3, head=False), where | {"ga": "s2.b0", "d": "s2.b1", "gb": "s2.b1", "gc": "s2.b2"})


def test_a_residual_add_under_an_add_join_is_part_of_its_branch() -> None:
    # t = ADD(ADD(r, fb), fc): r = ADD(ra, rr) is a residual add on the path from a (ra feeds rr and r), so its
    # inputs have no branch of their own: r heads a branch, and the join tree is the two outer ADDs
    lines = [
        "a = CONV_2D(x)", "b = CONV_2D(a)", "c = CONV_2D(b)",
        "ra = CONV_2D(a)", "rr = CONV_2D(ra)", "r = ADD(ra, rr)", "fb = CONV_2D(b)", "fc = CONV_2D(c)",
        "s1 = ADD(r, fb)", "t = ADD(s1, fc)", "d = CONV_2D(c)", "y = CONCATENATION(t, d)",
    ]
    where = dict.fromkeys(("ra", "rr", "r"), "s1.b0") | {"fb": "s1.b1", "fc": "s1.b2", "s1": "s1.join", "t": "s1.join"}
    _found(lines, ("y",), _stages(3), where | {"c": "stem", "d": "head"})
