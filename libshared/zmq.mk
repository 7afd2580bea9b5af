libshared_zmq_sources =
