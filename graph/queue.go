package graph

import "container/heap"

// readyQueue holds the nodes whose dependencies are done, waiting for a
// job slot. The next to start is a likely one (Node.Likely, or depending
// on one), then the one with the greatest depth (the longest chain of
// dependencies below it), then the one added to the graph first.
//
// Likely first: when one app of a hundred was edited, its compile is the
// only long node, and every other node a cache check of a few hundred
// microseconds. Checked in graph order, the edited app's compile would
// wait for the checks of every app before it, which take the CPUs, not
// the slots; started first, it runs while they are checked.
//
// Deepest first is what make does by working goal after goal: a node whose
// inputs are ready is closer to a result than a node that begins a new
// chain, so it goes first. In a tree of apps this runs each app's package
// as soon as its compile is done, beside the next compile, instead of every
// compile first and every package after: work of different kinds (a
// compiler on the CPUs, an image written to disk) overlaps, finished images
// appear early, and intermediate results do not pile up. Ties in insertion
// order keep runs reproducible.
type readyQueue struct {
	items  []int  // indexes into order
	depth  []int  // by index
	likely []bool // by index
}

func (q *readyQueue) Len() int { return len(q.items) }
func (q *readyQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if q.likely[a] != q.likely[b] {
		return q.likely[a]
	}
	if q.depth[a] != q.depth[b] {
		return q.depth[a] > q.depth[b]
	}
	return a < b
}
func (q *readyQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *readyQueue) Push(x any)    { q.items = append(q.items, x.(int)) }
func (q *readyQueue) Pop() any {
	n := len(q.items) - 1
	x := q.items[n]
	q.items = q.items[:n]
	return x
}

func (q *readyQueue) push(i int) { heap.Push(q, i) }
func (q *readyQueue) pop() int   { return heap.Pop(q).(int) }

// depths returns each node's depth by index into g.order (0 without
// dependencies, else one more than its deepest dependency) and whether it
// is likely to work (Likely, or depending on a likely node). g must be
// valid (no cycle).
func (g *Graph) depths(index map[string]int) (depth []int, likely []bool) {
	depth = make([]int, len(g.order))
	likely = make([]bool, len(g.order))
	done := make([]bool, len(g.order))
	var visit func(i int) int
	visit = func(i int) int {
		if done[i] {
			return depth[i]
		}
		n := g.nodes[g.order[i]]
		d, l := 0, n.Likely
		for _, dep := range n.Deps {
			j := index[dep]
			d = max(d, visit(j)+1)
			l = l || likely[j]
		}
		depth[i], likely[i], done[i] = d, l, true
		return d
	}
	for i := range g.order {
		visit(i)
	}
	return depth, likely
}
