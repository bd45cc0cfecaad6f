"""Generation workers on any number of machines, through NATS JetStream.

* :mod:`generation.broker.config`: how to reach the broker (URL, credentials, TLS) and the names of
  the streams, consumers, key-value buckets and subjects;
* :mod:`generation.broker.wire`: the messages (frozen dataclasses <-> bytes);
* :mod:`generation.broker.setup`: the streams, consumers and buckets, made idempotently by whoever starts
  first;
* :mod:`generation.broker.pull`: a pull-consumer client that returns as soon as a message arrives;
* :mod:`generation.broker.pool`: the bot's side, :class:`~generation.broker.pool.NatsPool`, a
  :class:`~generation.pool.WorkerPool`;
* :mod:`generation.broker.agent`: ``chibify worker``, :class:`~generation.broker.agent.WorkerAgent`.

See docs/scaling.md for the picture. Nothing here imports storage/, bot/ or an engine (the agent starts
its engines in a child process, :mod:`generation.worker`).
"""
