@0xc4b5e3a1f27d9e01;
# The remoteable wire protocol. Plain Cap'n Proto RPC: any implementation with this schema is a
# valid client. The bootstrap capability is a `Registry`.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("remoteable::wire");

struct Value {
  # A value that crosses the wire by copy. A `handle` is a capability: a reference to an object
  # that stays on the server.
  union {
    none    @0 :Void;
    bool    @1 :Bool;
    int64   @2 :Int64;
    float64 @3 :Float64;
    text    @4 :Text;
    bytes   @5 :Data;
    list    @6 :List(Value);
    map     @7 :List(Entry);
    handle  @8 :Handle;
  }
  struct Entry {
    key   @0 :Text;
    value @1 :Value;
  }
}

enum BinaryOp {
  add @0; sub @1; mul @2; div @3; mod @4;
  bitAnd @5; bitOr @6; bitXor @7; shl @8; shr @9;
  eq @10; ne @11; lt @12; le @13; gt @14; ge @15;
}

enum UnaryOp {
  neg @0;     # -h
  invert @1;  # ~h
  not @2;     # !h
}

struct Member {
  name @0 :Text;
  kind @1 :Text;   # "field", "readonly field", "property", "readonly property", "method"
  type @2 :Text;   # fields and properties: the value's kind ("int64", "list of text", "Node")
  signatures @3 :List(Text);  # methods: each overload, "(int64, text) -> Node"
}

interface Handle {
  # Every method that returns a `Handle` can be pipelined on: its result is usable before it
  # arrives. Only `get`, `str`, `truthy` and `describe` carry data back, so only they need to be
  # waited on.
  #
  # fetch: also evaluate the result, as `get`, `str` or `truthy` on it would, into `value`,
  # `text` or `truth` (the client sets it when the step is evaluated at once: one call instead
  # of two).

  enum Fetch {
    none @0;
    value @1;   # as get
    text @2;    # as str
    truth @3;   # as truthy
  }

  attr     @0 (name :Text, fetch :Fetch) -> (result :Handle, value :Value, text :Text, truth :Bool);
  setAttr  @1 (name :Text, value :Value) -> ();
  call     @2 (name :Text, args :List(Value), fetch :Fetch) -> (result :Handle, value :Value, text :Text, truth :Bool);
  invoke   @3 (args :List(Value), fetch :Fetch) -> (result :Handle, value :Value, text :Text, truth :Bool);  # call the object itself
  item     @4 (key :Value, fetch :Fetch) -> (result :Handle, value :Value, text :Text, truth :Bool);
  setItem  @5 (key :Value, value :Value) -> ();
  len      @6 (fetch :Fetch) -> (result :Handle, value :Value, text :Text, truth :Bool);
  binary   @7 (op :BinaryOp, operand :Value, reflected :Bool, fetch :Fetch) -> (result :Handle, value :Value, text :Text, truth :Bool);
    # reflected: the operand stands on the left, as in `4 + h`.
  unary    @8 (op :UnaryOp, fetch :Fetch) -> (result :Handle, value :Value, text :Text, truth :Bool);

  get      @9 () -> (value :Value);      # copy a plain value to the caller
  str      @10 () -> (text :Text);
  truthy   @11 () -> (value :Bool);
  describe @12 () -> (typeName :Text, members :List(Member), signatures :List(Text));

  chain    @13 (steps :List(Step), fetch :Fetch, keep :Bool) -> (result :Handle, value :Value, text :Text, truth :Bool);
    # Runs the steps in order, each on the previous step's result (the first on this handle),
    # as the methods above would, and answers for the last: `result` only if `keep` (else the
    # caller wants just the evaluation), and `fetch` as above. The results in between get no
    # handle. A failing step fails the chain. The client sends a chain for steps whose
    # intermediate handles nobody holds: one call instead of one per step.

  iterate  @14 (batch :UInt32) -> (cursor :Cursor, values :List(Value), done :Bool);
    # Starts reading the object's elements (a list, a map's keys, a registered type with
    # begin()/end(), a generator) and answers with the first batch: at most `batch` elements
    # (the server clamps it to its limit), `done` once there are no more. `cursor` reads the
    # rest. A container is read from a snapshot taken when this runs; a generator runs only as
    # far as the batches asked for, and stops when the cursor is released.
  slice    @15 (start :Int64, stop :Int64, fetch :Fetch) -> (result :Handle, value :Value, text :Text, truth :Bool);
    # A copy of the elements from `start` to `stop` (exclusive) as a list; negative indices
    # count from the end, and both are clamped to the size (as Python's `x[a:b]`).
  openStream @16 (method :Text) -> (stream :Stream);
    # A stream of calls to this object's method `method`: each Stream.write runs it with its
    # arguments, one at a time, in order.

  struct Step {
    union {
      attr   @0 :Text;
      call   @1 :CallStep;
      invoke @2 :List(Value);
      item   @3 :Value;
      len    @4 :Void;
      binary @5 :BinaryStep;
      unary  @6 :UnaryOp;
      slice  @7 :SliceStep;
    }
  }
  struct CallStep {
    name @0 :Text;
    args @1 :List(Value);
  }
  struct SliceStep {
    start @0 :Int64;
    stop  @1 :Int64;
  }
  struct BinaryStep {
    op        @0 :BinaryOp;
    operand   @1 :Value;
    reflected @2 :Bool;
  }
}

interface Stream {
  # The receiving end of a stream (Handle.openStream), on the sink object's actor. A writer keeps
  # a bounded number of bytes of writes unanswered (its window); a write is answered once the
  # sink's method has run for it. Once one write fails, every later call fails with its error
  # and runs nothing.
  write @0 (args :List(Value)) -> stream;
  end   @1 (method :Text) -> ();
    # After every write: runs `method` (no arguments) unless empty, and ends the stream.
  fail  @2 (method :Text, kind :Text, message :Text) -> ();
    # The writer ends the stream with an error: runs `method` (kind, message) unless empty.
}

interface Cursor {
  # The rest of an iteration (Handle.iterate). Each call runs on the object's actor, one at a
  # time, in order. Releasing the cursor ends the iteration (and stops a generator).
  next @0 (max :UInt32) -> (values :List(Value), done :Bool);
    # At most `max` elements (clamped as Handle.iterate's batch); `done` once there are no more.
}

interface Registry {
  # The bootstrap capability of a server.
  fetch  @0 (name :Text) -> (handle :Handle);
  browse @1 () -> (names :List(Text));
  store  @2 (value :Value) -> (handle :Handle);
  attach @3 (handle :Handle, name :Text) -> ();
  detach @4 (name :Text) -> ();
  version @5 () -> (protocol :UInt32, library :Text);
  # The protocol version the server speaks (remoteable::protocol_version) and its library's
  # version ("MAJOR.MINOR.PATCH"). Clients check the protocol on connecting.
  authenticate @6 (token :Text) -> (registry :Registry);
  # On a server with authentication, the bootstrap registry answers every method but `version`
  # and this one with a "security: authenticate first" error. This checks the token and answers
  # with a registry scoped to its principal (what it may see, fetch, store, attach, detach). An
  # empty token on a TLS connection whose client certificate the server maps to a principal
  # gives that principal. A refused token fails with a security error; after too many failures
  # from one address the server refuses without checking, and a connection that does not
  # authenticate in time is closed. Without authentication it answers with a registry equal
  # to the bootstrap one, whatever the token.
}
