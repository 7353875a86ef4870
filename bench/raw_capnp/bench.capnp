@0xb6ed9d8dae736af2;
# The raw Cap'n Proto baseline: the benchmark's object model written by hand as Cap'n Proto
# interfaces, served with EzRpcServer. This is what remoteable is measured against.

interface Node {
  # A tree node with an Int64 `value`. child(i) returns a kept child (the same capability every
  # time for the same i) whose value is this node's value + i.
  child @0 (i :Int64) -> (node :Node);
  # Reads an attribute by name, as a generic object model does. Only "value" exists.
  getAttr @1 (name :Text) -> (value :Int64);
}

interface Bench {
  # The bootstrap interface. root() is the node whose value is 38; add() stands in for the free
  # function add(a, b).
  root @0 () -> (node :Node);
  add @1 (a :Int64, b :Int64) -> (sum :Int64);
}
