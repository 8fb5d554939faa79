/// Who downloads from whom within one task: an edge parent → child. Kept acyclic so
/// no peer ever ends up waiting on itself through its descendants.
struct PeerDAG {
    /// Vertices in an array (for cheap random sampling) with each one's position.
    private(set) var vertices: [String] = []
    private var position: [String: Int] = [:]
    private(set) var parents: [String: Set<String>] = [:]
    private(set) var children: [String: Set<String>] = [:]

    var count: Int { vertices.count }

    mutating func add(_ id: String) {
        guard position[id] == nil else { return }
        position[id] = vertices.count
        vertices.append(id)
    }

    func contains(_ id: String) -> Bool { position[id] != nil }

    func inDegree(_ id: String) -> Int { parents[id]?.count ?? 0 }
    func outDegree(_ id: String) -> Int { children[id]?.count ?? 0 }

    /// False for a self edge, an unknown vertex, an existing edge, or when `parent` is a
    /// descendant of `child` (the edge would close a cycle).
    func canAddEdge(from parent: String, to child: String) -> Bool {
        guard parent != child, contains(parent), contains(child) else { return false }
        if children[parent]?.contains(child) == true { return false }
        return !isReachable(parent, from: child)
    }

    /// Depth-first search along child edges.
    func isReachable(_ target: String, from start: String) -> Bool {
        var stack = [start]
        var seen: Set<String> = [start]
        while let node = stack.popLast() {
            for next in children[node] ?? [] {
                if next == target { return true }
                if seen.insert(next).inserted { stack.append(next) }
            }
        }
        return false
    }

    mutating func addEdge(from parent: String, to child: String) -> Bool {
        guard canAddEdge(from: parent, to: child) else { return false }
        children[parent, default: []].insert(child)
        parents[child, default: []].insert(parent)
        return true
    }

    /// Removes every edge into `child`; returns the parents it had.
    mutating func removeInEdges(_ child: String) -> Set<String> {
        let ps = parents.removeValue(forKey: child) ?? []
        for p in ps { children[p]?.remove(child) }
        return ps
    }

    /// Removes every edge out of `parent`; returns the children it had.
    mutating func removeOutEdges(_ parent: String) -> Set<String> {
        let cs = children.removeValue(forKey: parent) ?? []
        for c in cs { parents[c]?.remove(parent) }
        return cs
    }

    mutating func remove(_ id: String) {
        _ = removeInEdges(id)
        _ = removeOutEdges(id)
        guard let i = position.removeValue(forKey: id) else { return }
        // Swap-remove keeps removal O(1); order carries no meaning.
        let last = vertices.removeLast()
        if last != id {
            vertices[i] = last
            position[last] = i
        }
    }

    /// Up to `limit` distinct vertices in random order, without touching the others: with
    /// thousands of peers per task, shuffling them all for 15 candidates dominated scheduling.
    func randomVertices(_ limit: Int, using rng: inout some RandomNumberGenerator) -> [String] {
        let n = vertices.count
        if n <= limit { return vertices.shuffled(using: &rng) }
        var picked: Set<Int> = []
        var out: [String] = []
        out.reserveCapacity(limit)
        while out.count < limit {
            let i = Int.random(in: 0..<n, using: &rng)
            if picked.insert(i).inserted { out.append(vertices[i]) }
        }
        return out
    }
}
