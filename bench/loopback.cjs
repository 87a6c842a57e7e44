// Preloaded into Portkey's node process (`node --require bench/loopback.cjs`) by run_peer.sh:
// Portkey's build/start-server.js listens on its port without naming a host, i.e. on every
// interface; this makes any such listen() bind 127.0.0.1 so that the benchmark stays on
// loopback. Listens that name a host (or a unix path) are left as they are.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const a0 = args[0];
  if (typeof a0 === "number" || (typeof a0 === "string" && /^\d+$/.test(a0))) {
    if (args.length < 2 || typeof args[1] === "function") {
      args.splice(1, 0, "127.0.0.1"); // listen(port[, cb])
    } else if (args[1] == null) {
      args[1] = "127.0.0.1"; // listen(port, undefined, cb): @hono/node-server's serve()
    }
  } else if (a0 && typeof a0 === "object" && a0.port != null && !a0.host && !a0.path) {
    args[0] = { ...a0, host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
