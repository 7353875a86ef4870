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
  # W7 (issue 10): calls sink.triple(x) once and answers with its y.
  ask @2 (sink :Sink, x :Int64) -> (y :Int64);
  # W8 (issue 10): sends sink.onEvent(0) ... onEvent(n - 1) with at most 1,000 unanswered at a
  # time, then awaits sink.count() and answers with it.
  publish @3 (sink :Sink, n :Int64) -> (count :UInt64);
  # STREAM (issue 13): the server's byte sink (one object, kept).
  byteSink @4 () -> (sink :ByteSink);
}

interface ByteSink {
  # STREAM: the client writes chunks; take() answers with the bytes received since the last
  # take() (after every write before it: calls after a streaming call wait for it).
  write @0 (data :Data) -> stream;
  take @1 () -> (bytes :UInt64);
}

interface Sink {
  # A client's object, passed to the server as a parameter (W7, W8).
  onEvent @0 (i :Int64) -> ();
  triple @1 (x :Int64) -> (y :Int64);
  # Events received since the client last reset it.
  count @2 () -> (n :UInt64);
}
