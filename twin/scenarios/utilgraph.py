"""A utility network as arrays (nodes, edges, incidence in CSR form) and the traces an
outage needs: the walk to the isolating devices, the radial downstream of a fault, and
what stays connected to a source. Plain NumPy/SciPy; lengths in metres."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: statuses under which a node passes nothing (valves shut, switches open, out of use)
SHUT = {"closed", "normally_closed", "open", "normally_open", "out_of_service", "failed"}


@dataclass
class Graph:
    """Nodes are indexed 0…N-1 (``node_ids`` sorted); edges 0…E-1 with ``ends`` (E×2
    node indexes) and ``length`` (m). ``indptr``/``adj_edge``/``adj_node`` list the edges
    at each node."""

    edge_ids: np.ndarray
    ends: np.ndarray
    length: np.ndarray
    node_ids: np.ndarray
    kind: np.ndarray  # object: the node kind (None when the node row is missing)
    shut: np.ndarray  # bool: passes nothing
    indptr: np.ndarray
    adj_edge: np.ndarray
    adj_node: np.ndarray

    @classmethod
    def build(cls, edge_cols: Any, node_cols: Any) -> Graph:
        """From ``(ids, from, to, length)`` and ``(ids, kinds, statuses)`` columns."""
        e_ids = np.asarray(edge_cols[0] or [], np.int64)
        ab = np.column_stack([np.asarray(edge_cols[1] or [], np.int64),
                              np.asarray(edge_cols[2] or [], np.int64)])
        length = np.asarray([0.0 if v is None else v for v in edge_cols[3] or []], float)
        node_ids, inv = np.unique(ab, return_inverse=True)
        ends = inv.reshape(-1, 2)
        n_ids = np.asarray(node_cols[0] or [], np.int64)
        order = np.argsort(n_ids)
        n_ids = n_ids[order]
        kinds = np.asarray(node_cols[1] or [], object)[order]
        status = np.asarray(node_cols[2] or [], object)[order]
        kind = np.full(len(node_ids), None, object)
        shut = np.zeros(len(node_ids), bool)
        if len(n_ids):
            pos = np.clip(np.searchsorted(n_ids, node_ids), 0, len(n_ids) - 1)
            found = n_ids[pos] == node_ids
            kind[found] = kinds[pos[found]]
            shut[found] = np.isin(status[pos[found]], list(SHUT))
        src = np.concatenate([ends[:, 0], ends[:, 1]])
        dst = np.concatenate([ends[:, 1], ends[:, 0]])
        eidx = np.concatenate([np.arange(len(e_ids)), np.arange(len(e_ids))])
        o = np.argsort(src, kind="stable")
        indptr = np.asarray(np.searchsorted(src[o], np.arange(len(node_ids) + 1)))
        return cls(e_ids, ends, length, node_ids, kind, shut, indptr, eidx[o], dst[o])

    def index(self, node_id: int) -> int | None:
        i = int(np.searchsorted(self.node_ids, node_id))
        return i if i < len(self.node_ids) and self.node_ids[i] == node_id else None

    def edge_index(self, edge_id: int) -> int | None:
        hit = np.flatnonzero(self.edge_ids == edge_id)
        return int(hit[0]) if len(hit) else None

    def is_kind(self, kinds: set[str]) -> np.ndarray:
        return np.isin(self.kind, list(kinds))


def isolate(
    g: Graph, stops: set[str], *, edge: int | None = None, node: int | None = None
) -> tuple[np.ndarray, list[int], list[int]]:
    """Walk from a fault (edge index or node index) to the isolating devices.

    Returns
    -------
    tuple
        (bool mask of isolated edges, node indexes to operate, node indexes already shut).
    """
    stop = g.is_kind(stops) | g.shut
    iso = np.zeros(len(g.edge_ids), bool)
    seen = np.zeros(len(g.node_ids), bool)
    operate: list[int] = []
    shut: list[int] = []
    queue: list[int] = []
    if edge is not None:
        iso[edge] = True
        queue.extend(int(v) for v in g.ends[edge])
    else:
        assert node is not None
        seen[node] = True
        for k in range(g.indptr[node], g.indptr[node + 1]):
            iso[g.adj_edge[k]] = True
            queue.append(int(g.adj_node[k]))
    while queue:
        v = queue.pop()
        if seen[v]:
            continue
        seen[v] = True
        if stop[v]:
            (shut if g.shut[v] else operate).append(v)
            continue
        for k in range(g.indptr[v], g.indptr[v + 1]):
            e = g.adj_edge[k]
            if not iso[e]:
                iso[e] = True
                queue.append(int(g.adj_node[k]))
    return iso, sorted(operate), sorted(shut)


def supplied(g: Graph, sources: set[str], removed: np.ndarray,
             blocked: list[int]) -> np.ndarray | None:
    """Bool mask of edges connected to a working source once ``removed`` edges are cut
    out and ``blocked`` nodes pass nothing (None: the network has no source)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(g.node_ids)
    dead = g.shut.copy()
    dead[blocked] = True
    src = np.flatnonzero(g.is_kind(sources) & ~dead)
    if not len(src):
        return None
    ends = g.ends.copy()
    # a node that passes nothing: every edge end at it gets a node of its own
    at_dead = dead[ends]
    ends[at_dead] = n + np.arange(int(at_dead.sum()))
    m = n + int(at_dead.sum())
    keep = ~removed
    e = ends[keep]
    comp = connected_components(
        coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(m, m)), directed=False)[1]
    live = np.zeros(comp.max() + 1, bool)
    live[comp[src]] = True
    return keep & live[comp[ends[:, 0]]]  # type: ignore[no-any-return]


def downstream(
    g: Graph, stops: set[str], sources: set[str], *, edge: int | None = None,
    node: int | None = None,
) -> tuple[np.ndarray, list[int], np.ndarray] | None:
    """Radial operation: each node is fed along its shortest path from the nearest
    source. From the fault the walk goes down that tree: the section down to the first
    stop devices is isolated, those devices are opened, and what lies beyond them is cut
    off until fed from another side. None when the fault is not fed at all.

    Returns
    -------
    tuple
        (bool mask of isolated edges, node indexes to operate, bool mask of cut edges).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    n = len(g.node_ids)
    live = ~(g.shut[g.ends[:, 0]] | g.shut[g.ends[:, 1]])
    lo, hi = g.ends.min(axis=1), g.ends.max(axis=1)
    order = np.lexsort((g.length, hi, lo))
    order = order[live[order]]
    first = np.ones(len(order), bool)  # one weight per node pair: the shortest edge
    first[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
    keep = order[first]
    src = np.flatnonzero(g.is_kind(sources) & ~g.shut)
    if not len(src):
        return None
    w = coo_matrix((np.maximum(g.length[keep], 1e-3), (lo[keep], hi[keep])), shape=(n, n))
    dist, pred, _ = dijkstra(w.tocsr(), directed=False, indices=src, min_only=True,
                             return_predecessors=True)
    iso = np.zeros(len(g.edge_ids), bool)
    if edge is not None:
        a, b = (int(v) for v in g.ends[edge])
        iso[edge] = True
        start = b if pred[b] == a else a if pred[a] == b else None
        if start is None:  # a tie between two feeders: only the edge itself
            return (iso, [], np.zeros_like(iso)) if np.isfinite(dist[a]) else None
    else:
        start = node
    if start is None or not np.isfinite(dist[start]):
        return None
    has = np.flatnonzero(pred >= 0)
    by_parent = has[np.argsort(pred[has], kind="stable")]
    bounds = np.searchsorted(pred[by_parent], np.arange(n + 1))
    stop = g.is_kind(stops)
    code = np.zeros(n, np.int8)  # 1 section, 2 opened device, 3 beyond
    operate: list[int] = []
    code[start] = 1
    if edge is not None and stop[start]:
        code[start] = 2
        operate.append(start)
    stack = [(int(c), 3 if code[start] == 2 else 1)
             for c in by_parent[bounds[start]:bounds[start + 1]]]
    while stack:
        v, lab = stack.pop()
        if code[v]:
            continue
        if lab == 1 and stop[v]:
            code[v], lab = 2, 3
            operate.append(v)
        else:
            code[v] = lab
        stack.extend((int(c), lab) for c in by_parent[bounds[v]:bounds[v + 1]])
    ca, cb = code[g.ends[:, 0]], code[g.ends[:, 1]]
    both = (ca > 0) & (cb > 0)
    beyond = both & ((ca == 3) | (cb == 3))
    return iso | (both & ~beyond), sorted(operate), beyond & ~iso
