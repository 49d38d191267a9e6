"""The depression hierarchy of a DEM and fill-spill-merge over it (Barnes, Callaghan &
Wickert 2020, "Computing water flow through complex landscapes", parts 2 and 3), in a
plain form.

Cells are added in order of elevation (4-connected); an outlet (the sea, a river, the
raster's edge) belongs to the "ocean" from the moment its own elevation is reached.
A cell with no lower neighbour added starts a leaf depression; a cell touching two
depressions is their saddle: they merge there into a parent whose level is the saddle's
elevation; a depression touching the ocean spills into it. Each cell's water flows to
the leaf its lowest added neighbour drains to (steepest descent).

At run time the water of each leaf is known; nodes are resolved bottom-up: a depression
fuller than its capacity at its parent's level spills over the saddle into its sibling
(entering at the leaf below the saddle on that side, and filling and spilling inside
it); when both are full they merge into one lake that fills further; a depression full
at the ocean's saddle spills into the sea. Volumes in m³, elevations in metres.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

OCEAN = -1


@dataclass(eq=False)
class Tree:
    """A depression hierarchy (node ids in creation order: children before parents)."""

    parent: np.ndarray  # int64 per node, OCEAN for a depression that spills to the sea
    child1: np.ndarray  # int64 per node, -1 for a leaf
    child2: np.ndarray
    top: np.ndarray  # float64 per node: the level it spills at (its parent's saddle)
    entry: np.ndarray  # int64 per node: the leaf water spilling into it enters
    spill_to: np.ndarray  # int64 per node spilling to the ocean: the leaf its overflow
    #                       runs down into on the far side (a depression that reached the
    #                       ocean lower down), or OCEAN
    flowleaf: np.ndarray  # int64 per cell: the leaf its water reaches, OCEAN
    join: np.ndarray  # int64 per cell: the node it belongs to (-1: an outlet)
    cells: np.ndarray  # int64 cell ids, grouped by subtree (depth-first)
    start: np.ndarray  # int64 per node: first position of its subtree in ``cells``
    stop: np.ndarray  # int64 per node: one past the last

    @property
    def count(self) -> int:
        return int(len(self.parent))


def build(z: np.ndarray, outlets: np.ndarray) -> Tree:
    """The hierarchy of ``z`` (2-D, metres; NaN only on outlets) with ``outlets``."""
    h, w = z.shape
    n = h * w
    zf = np.where(np.isnan(z), -np.inf, z).ravel()
    out = outlets.ravel()
    order = np.lexsort((np.arange(n), zf)).tolist()
    elev = zf.tolist()
    is_out = out.tolist()
    comp = [-1] * n  # component of each added cell (0 = the ocean)
    uf = [0]  # union-find over components
    node_of = [OCEAN]  # tree node of each component root
    flow = [OCEAN] * n
    join = [-1] * n
    parent: list[int] = []
    c1: list[int] = []
    c2: list[int] = []
    top: list[float] = []
    entry: list[int] = []
    spill_to: list[int] = []

    def find(k: int) -> int:
        r = k
        while uf[r] != r:
            r = uf[r]
        while uf[k] != r:
            uf[k], k = r, uf[k]
        return r

    for c in order:
        r_, col = divmod(c, w)
        nbs = [m for m in (c - w if r_ else -1, c + w if r_ + 1 < h else -1,
                           c - 1 if col else -1, c + 1 if col + 1 < w else -1)
               if m >= 0 and comp[m] >= 0]
        if is_out[c]:  # an outlet, reached at its own elevation: what it touches spills
            comp[c] = 0
            for m in nbs:
                r = find(comp[m])
                if r:
                    t = node_of[r]
                    top[t] = elev[c]
                    parent[t] = OCEAN
                    uf[r] = 0
            continue
        if not nbs:
            k = len(uf)
            uf.append(k)
            leaf = len(parent)
            parent.append(OCEAN)
            c1.append(-1)
            c2.append(-1)
            top.append(np.inf)
            entry.append(leaf)
            spill_to.append(OCEAN)
            node_of.append(leaf)
            comp[c] = k
            flow[c] = leaf
            join[c] = leaf
            continue
        low = min(nbs, key=elev.__getitem__)
        flow[c] = flow[low]
        main = find(comp[low])
        ze = elev[c]
        for m in nbs:
            r = find(comp[m])
            if r == main:
                continue
            # the lowest neighbour of the saddle on each side: where water crossing it lands
            side = min((x for x in nbs if find(comp[x]) == r), key=elev.__getitem__)
            if main == 0 or r == 0:
                other = r if main == 0 else main
                t = node_of[other]
                wet = min((x for x in nbs if find(comp[x]) == 0), key=elev.__getitem__)
                spill_to[t] = flow[wet]
                top[t] = ze
                parent[t] = OCEAN
                uf[other] = 0
                main = 0
                continue
            a, b = node_of[main], node_of[r]
            p = len(parent)
            parent.append(OCEAN)
            c1.append(a)
            c2.append(b)
            top.append(np.inf)
            entry.append(-1)
            spill_to.append(OCEAN)
            parent[a] = parent[b] = p
            top[a] = top[b] = ze
            entry[a] = flow[low] if flow[low] != OCEAN else a
            entry[b] = flow[side]
            uf[r] = main
            node_of[main] = p
        comp[c] = main
        join[c] = node_of[main] if main else -1
    par = np.asarray(parent, np.int64)
    nn = len(parent)
    # depth-first order of the nodes: a subtree is one run of cells
    ch1, ch2 = np.asarray(c1, np.int64), np.asarray(c2, np.int64)
    pos = np.zeros(nn, np.int64)
    size = np.zeros(nn, np.int64)
    jn = np.asarray(join, np.int64)
    own = np.bincount(jn[jn >= 0], minlength=nn)
    size[:] = own
    for k in range(nn):  # children before parents
        if ch1[k] >= 0:
            size[k] += size[ch1[k]] + size[ch2[k]]
    roots = np.flatnonzero(par == OCEAN)
    nxt = 0
    start = np.zeros(nn, np.int64)
    stack = roots[::-1].tolist()
    while stack:  # pre-order: a node's own cells, then its children's subtrees
        k = stack.pop()
        start[k] = nxt
        pos[k] = nxt
        nxt += own[k]
        if ch1[k] >= 0:
            stack.append(int(ch2[k]))
            stack.append(int(ch1[k]))
    stop = start + size
    cell_ids = np.flatnonzero(jn >= 0)
    slot = pos[jn[cell_ids]].copy()
    srt = np.argsort(slot, kind="stable")
    cells = cell_ids[srt]
    return Tree(par, ch1, ch2, np.asarray(top, np.float64), np.asarray(entry, np.int64),
                np.asarray(spill_to, np.int64), np.asarray(flow, np.int64), jn, cells, start,
                stop)


def fill_spill_merge(tree: Tree, ground: np.ndarray, area: np.ndarray, water: np.ndarray,
                     sea_nodes: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """Spread ``water`` (m³ per cell, flat) over the hierarchy.

    Returns the water depth per cell (m, flat), the volume stored and the volume that
    reached the ocean (m³). ``sea_nodes`` (bool per node): depressions that are part of
    the sea (a high tide): their water goes to the sea.
    """
    nn = tree.count
    par, ch1, ch2, top = tree.parent, tree.child1, tree.child2, tree.top
    cell_a = area[tree.cells]
    cell_z = ground[tree.cells]
    # subtree sums of area and area × ground (all its cells lie at or below its top)
    ca = np.concatenate([[0.0], np.cumsum(cell_a)])
    cag = np.concatenate([[0.0], np.cumsum(cell_a * cell_z)])
    sub_a = ca[tree.stop] - ca[tree.start]
    sub_ag = cag[tree.stop] - cag[tree.start]
    with np.errstate(invalid="ignore"):
        cap = np.where(np.isfinite(top), top * sub_a - sub_ag, np.inf)
    flow = tree.flowleaf
    leaf_w = np.bincount(flow[flow >= 0], weights=water[flow >= 0], minlength=nn)
    to_sea = float(water[flow == OCEAN].sum())
    W = leaf_w.astype(np.float64).tolist()
    active = (ch1 < 0).tolist()  # a leaf is one lake; a parent once both children merge
    P = par.tolist()
    C1, C2 = ch1.tolist(), ch2.tolist()
    CAP = cap.tolist()
    ENTRY = tree.entry.tolist()
    sea = sea_nodes.tolist() if sea_nodes is not None else [False] * nn
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def lake_of(leaf: int, root: int) -> int:
        k = leaf
        while k != root and active[P[k]]:
            k = P[k]
        return k

    def bump(k: int, root: int, amt: float) -> None:
        while k != root:
            k = P[k]
            W[k] += amt

    def add_into(root: int, leaf: int, amt: float) -> float:
        """Put ``amt`` into ``root``'s subtree at ``leaf``; what does not fit under
        ``root``'s top comes back."""
        cur = lake_of(leaf, root)
        while True:
            W[cur] += amt
            if cur == root:
                if W[cur] > CAP[cur]:
                    left = W[cur] - CAP[cur]
                    W[cur] = CAP[cur]
                    return left
                return 0.0
            if W[cur] <= CAP[cur]:
                bump(cur, root, amt)
                return 0.0
            over = W[cur] - CAP[cur]
            W[cur] = CAP[cur]
            q = P[cur]
            sib = C2[q] if C1[q] == cur else C1[q]
            bump(cur, root, amt - over)
            left = add_into(sib, ENTRY[sib], over)
            bump(sib, root, over - left)
            if left <= 0:
                return 0.0
            active[q] = True  # both full: one lake over them
            cur, amt = q, left

    SPILL = tree.spill_to.tolist()

    def top_of(k: int) -> int:
        while P[k] != OCEAN:
            k = P[k]
        return k

    def spill(k: int, over: float) -> float:
        """Overflow of the top depression ``k``: down the far side of its saddle into
        the depression there (which may spill on), or the sea; returns what reached the
        sea."""
        while over > 0:
            tgt = SPILL[k]
            if tgt == OCEAN:
                return over
            root = top_of(tgt)
            if sea[root]:
                return over
            over, k = add_into(root, tgt, over), root
        return 0.0

    for k in range(nn):
        if C1[k] >= 0:
            a, b = C1[k], C2[k]
            W[k] = W[a] + W[b]
            fa, fb = W[a] >= CAP[a], W[b] >= CAP[b]
            if fa and fb:
                active[k] = True
            elif fa or fb:
                full, other = (a, b) if fa else (b, a)
                over = W[full] - CAP[full]
                W[full] = CAP[full]
                left = add_into(other, ENTRY[other], over)
                if left > 0:
                    active[k] = True
                W[k] = W[a] + W[b] + left
    # then the depressions that spill to the ocean, lowest saddle first (a spill lands
    # in a depression that reached the ocean lower down, already resolved)
    tops = np.flatnonzero(par == OCEAN)
    for k in tops[np.argsort(top[tops], kind="stable")].tolist():
        if sea[k]:
            to_sea += W[k]
            W[k] = 0.0
        elif W[k] > CAP[k]:
            over = W[k] - CAP[k]
            W[k] = CAP[k]
            to_sea += spill(k, over)
    stored = float(sum(W[k] for k in range(nn) if P[k] == OCEAN))
    # the lake each node lies under: its highest active ancestor, while active
    act = np.asarray(active, bool)
    up = np.arange(nn)
    has_par = par >= 0
    step = np.where(has_par & act & act[np.maximum(par, 0)], par, up)
    while True:
        nxt = step[step]
        if np.array_equal(nxt, step):
            break
        step = nxt
    Wa = np.asarray(W)
    level = np.full(nn, -np.inf)
    lakes = np.flatnonzero(act & (step == up))
    full = Wa[lakes] >= cap[lakes] * (1 - 1e-12)
    level[lakes[full]] = top[lakes[full]]
    # partly filled lakes (disjoint subtrees): each level solves its volume curve, all at
    # once — cells sorted by (lake, ground), volume when the water reaches each cell
    ks = lakes[~full & (Wa[lakes] > 0)]
    if ks.size:
        lens = tree.stop[ks] - tree.start[ks]
        seg = np.repeat(np.arange(ks.size), lens)
        first = np.cumsum(lens) - lens
        pos = np.arange(int(lens.sum())) - first[seg] + tree.start[ks][seg]
        z, a = cell_z[pos], cell_a[pos]
        o = np.lexsort((z, seg))
        z, a, seg = z[o], a[o], seg[o]
        ca_, cag_ = np.cumsum(a), np.cumsum(a * z)
        base_a = np.where(first > 0, ca_[np.maximum(first - 1, 0)], 0.0)
        base_ag = np.where(first > 0, cag_[np.maximum(first - 1, 0)], 0.0)
        in_a, in_ag = ca_ - base_a[seg], cag_ - base_ag[seg]
        vol_at = z * (in_a - a) - (in_ag - a * z)
        count = np.bincount(seg, weights=vol_at <= Wa[ks][seg], minlength=ks.size)
        j = first + np.maximum(count.astype(np.int64), 1) - 1
        level[ks] = (Wa[ks] + in_ag[j]) / in_a[j]
    if sea_nodes is not None:  # inside a depression the sea took: no rain water
        in_sea = sea_nodes.copy()
        for k in range(nn - 1, -1, -1):  # parents before children
            if par[k] >= 0 and in_sea[par[k]]:
                in_sea[k] = True
        level[in_sea] = -np.inf
    depth = np.zeros(len(ground), np.float64)
    jn = tree.join
    inside = jn >= 0
    node = jn[inside]
    lv = np.where(act[node], level[step[node]], -np.inf)
    depth[inside] = np.maximum(lv - ground[inside], 0.0)
    return depth, stored, to_sea
