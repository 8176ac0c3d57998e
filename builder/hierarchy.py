"""Levels, depth, parents and branches from hierarchy edges (child → parent), with cycles reported and broken.

The rule (DESIGN.md, "Hierarchy rule"):
* roots have no parent in the KG, leaves have no child, everything between is intermediate; a node with neither
  parent nor child stands outside the hierarchy and counts as a leaf with no depth and no branch;
* depth is the shortest distance from a root, following child edges;
* `branch_id` is the child-of-root subtree a node belongs to: a child of a root is its own branch, a deeper node takes
  the branch of its shallowest parent (the smallest branch id among equals), a root is its own branch;
* a cycle is reported by its nodes and broken deterministically: inside a strongly connected component only the edges
  whose child id sorts before the parent id are kept, which leaves the component acyclic;
* with no hierarchy edges at all, levels come from degree centrality over the fact graph: the top 1 % of nodes by
  degree (at least one) are roots, the next 9 % intermediate, the rest leaves; parents are the neighbours one hop
  closer to a root.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

ROOT = "root"
INTERMEDIATE = "intermediate"
LEAF = "leaf"
LEVELS = (ROOT, INTERMEDIATE, LEAF)


@dataclass
class Hierarchy:
    """Per-node hierarchy tags, indexed like the node list given to `compute_hierarchy`."""

    level: list[str]
    depth: list[int | None]
    parents: list[list[int]]
    branch: list[int | None]
    method: str  # "edges" or "degree"
    cycles: list[list[int]] = field(default_factory=list)
    dropped_edges: int = 0
    longest_chain: int = 0  # edges on the longest child→parent path (depth is the shortest)


def compute_hierarchy(n_nodes: int, edges: Iterable[tuple[int, int]], node_order: Sequence[str],
                      fact_edges: Iterable[tuple[int, int]] = ()) -> Hierarchy:
    """Tag `n_nodes` nodes from child→parent `edges` (node indices); `node_order` gives the ids used to break ties.

    `fact_edges` (undirected, node indices) are only used when there are no hierarchy edges at all.
    """
    parent_sets: list[set[int]] = [set() for _ in range(n_nodes)]
    any_edge = False
    for child, parent in edges:
        any_edge = True
        parent_sets[child].add(parent)
    if not any_edge:
        return _hierarchy_from_degree(n_nodes, fact_edges, node_order)

    cycles, dropped = _break_cycles(parent_sets, node_order)
    parents = [sorted(ps, key=node_order.__getitem__) if len(ps) > 1 else list(ps) for ps in parent_sets]
    children: list[list[int]] = [[] for _ in range(n_nodes)]
    for child, ps in enumerate(parents):
        for parent in ps:
            children[parent].append(child)

    level: list[str] = []
    for i in range(n_nodes):
        if not parents[i]:
            level.append(ROOT if children[i] else LEAF)
        else:
            level.append(INTERMEDIATE if children[i] else LEAF)
    roots = [i for i in range(n_nodes) if not parents[i] and children[i]]
    depth, branch = _depth_and_branch(roots, parents, children, node_order)
    return Hierarchy(level=level, depth=depth, parents=parents, branch=branch, method="edges",
                     cycles=cycles, dropped_edges=dropped, longest_chain=_longest_chain(parents, children))


def _longest_chain(parents: list[list[int]], children: list[list[int]]) -> int:
    """Length in edges of the longest root-to-node path of the (now acyclic) hierarchy, by Kahn's order."""
    pending = [len(ps) for ps in parents]
    height = [0] * len(parents)
    ready = [i for i, k in enumerate(pending) if k == 0]
    while ready:
        node = ready.pop()
        for child in children[node]:
            height[child] = max(height[child], height[node] + 1)
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    return max(height, default=0)


def _depth_and_branch(roots: list[int], parents: list[list[int]], children: list[list[int]],
                      node_order: Sequence[str]) -> tuple[list[int | None], list[int | None]]:
    n = len(parents)
    depth: list[int | None] = [None] * n
    queue: deque[int] = deque()
    for r in roots:
        depth[r] = 0
        queue.append(r)
    order: list[int] = []
    while queue:
        node = queue.popleft()
        order.append(node)
        d = depth[node] + 1  # type: ignore[operator]
        for child in children[node]:
            if depth[child] is None:
                depth[child] = d
                queue.append(child)

    branch: list[int | None] = [None] * n
    for node in order:  # breadth-first, so every shallower parent already has its branch
        d = depth[node]
        if d == 0 or d == 1:
            branch[node] = node
            continue
        best: int | None = None
        for parent in parents[node]:
            if depth[parent] == d - 1:  # type: ignore[operator]
                candidate = branch[parent]
                if candidate is not None and (best is None or node_order[candidate] < node_order[best]):
                    best = candidate
        branch[node] = best
    return depth, branch


def _break_cycles(parent_sets: list[set[int]], node_order: Sequence[str]) -> tuple[list[list[int]], int]:
    """Find every cycle (strongly connected component, or self-loop) and make it acyclic, deterministically."""
    dropped = 0
    cycles: list[list[int]] = []
    for node, ps in enumerate(parent_sets):
        if node in ps:
            ps.discard(node)
            cycles.append([node])
            dropped += 1
    for component in _strongly_connected_components(parent_sets):
        if len(component) < 2:
            continue
        members = set(component)
        cycles.append(sorted(component, key=node_order.__getitem__))
        for child in component:
            for parent in list(parent_sets[child]):
                if parent in members and not node_order[child] < node_order[parent]:
                    parent_sets[child].discard(parent)
                    dropped += 1
    cycles.sort(key=lambda c: node_order[c[0]])
    return cycles, dropped


def _strongly_connected_components(adjacency: list[set[int]]) -> list[list[int]]:
    """Tarjan's algorithm, iterative so deep hierarchies do not hit Python's recursion limit."""
    n = len(adjacency)
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for start in range(n):
        if index[start] != -1 or not adjacency[start]:
            continue
        # Successor order cannot change which nodes form a component, so the sets are walked unsorted.
        work: list[tuple[int, list[int], int]] = [(start, list(adjacency[start]), 0)]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack[start] = True
        while work:
            node, succ, pos = work[-1]
            if pos < len(succ):
                work[-1] = (node, succ, pos + 1)
                nxt = succ[pos]
                if index[nxt] == -1:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack[nxt] = True
                    work.append((nxt, list(adjacency[nxt]), 0))
                elif on_stack[nxt]:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return components


def _hierarchy_from_degree(n_nodes: int, fact_edges: Iterable[tuple[int, int]],
                           node_order: Sequence[str]) -> Hierarchy:
    """No hierarchy edges: rank nodes by degree centrality in the fact graph (networkx's degree_centrality is
    degree / (n - 1), so ranking by degree is the same ranking)."""
    neighbours: list[set[int]] = [set() for _ in range(n_nodes)]
    for a, b in fact_edges:
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)
    ranked = sorted(range(n_nodes), key=lambda i: (-len(neighbours[i]), node_order[i]))
    n_roots = max(1, round(n_nodes * 0.01)) if n_nodes else 0
    n_intermediate = round(n_nodes * 0.09)
    level = [LEAF] * n_nodes
    for rank, node in enumerate(ranked):
        if rank < n_roots:
            level[node] = ROOT
        elif rank < n_roots + n_intermediate:
            level[node] = INTERMEDIATE
    roots = ranked[:n_roots]
    depth: list[int | None] = [None] * n_nodes
    queue: deque[int] = deque()
    for r in sorted(roots, key=node_order.__getitem__):
        depth[r] = 0
        queue.append(r)
    while queue:
        node = queue.popleft()
        for nb in neighbours[node]:
            if depth[nb] is None:
                depth[nb] = depth[node] + 1  # type: ignore[operator]
                queue.append(nb)
    parents: list[list[int]] = [[] for _ in range(n_nodes)]
    children: list[list[int]] = [[] for _ in range(n_nodes)]
    for node in range(n_nodes):
        d = depth[node]
        if d:
            parents[node] = sorted((nb for nb in neighbours[node] if depth[nb] == d - 1), key=node_order.__getitem__)
            for p in parents[node]:
                children[p].append(node)
    _, branch = _depth_and_branch(roots, parents, children, node_order)
    return Hierarchy(level=level, depth=depth, parents=parents, branch=branch, method="degree")
