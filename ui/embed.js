/*
 * Switchyard browser callbacks, version 1.
 *
 * An embedded experience (in an iframe) tells the host page what happens with postMessage; this
 * script receives those messages, checks where they come from, and calls the host's handlers.
 *
 *   <script src="https://switchyard.example/embed.js"></script>
 *   <script>
 *     Switchyard.init({ origins: ["https://experience.example"] });   // who may talk to this page
 *     Switchyard.on("complete", (data, message) => showClaimPrizeButton(data));
 *   </script>
 *
 * Message shape (version 1), sent by the experience:
 *   window.parent.postMessage({ switchyard: 1, type: "complete", data: { ... } }, "https://host.example");
 *   - switchyard: 1      the protocol version (other values are ignored)
 *   - type:       string "register", "start", "complete", or any custom name
 *   - data:       any JSON value (optional)
 *
 * Messages from an origin that is not in the allow-list, and messages of another shape, are
 * ignored. Callbacks are for the user's experience (show a button, redirect); anything the
 * browser sends can be forged by the user, so data you must trust comes through webhooks.
 */
(function (global) {
  "use strict";
  var VERSION = 1;
  var origins = [];
  var handlers = {};

  function dispatch(event) {
    if (origins.indexOf(event.origin) === -1) return;
    var message = event.data;
    if (!message || typeof message !== "object" || message.switchyard !== VERSION || typeof message.type !== "string") return;
    var callbacks = (handlers[message.type] || []).concat(handlers["*"] || []);
    for (var i = 0; i < callbacks.length; i++) {
      try {
        callbacks[i](message.data, { type: message.type, origin: event.origin, source: event.source });
      } catch (error) {
        setTimeout(function () { throw error; });
      }
    }
  }

  global.Switchyard = {
    version: VERSION,
    /** Sets the origins allowed to send messages, e.g. ["https://experience.example"]. */
    init: function (options) {
      origins = ((options && options.origins) || []).map(function (o) { return String(o).replace(/\/$/, ""); });
      return this;
    },
    /** Calls `handler(data, meta)` for messages of `type` ("*" for every type). */
    on: function (type, handler) {
      (handlers[type] = handlers[type] || []).push(handler);
      return this;
    },
    off: function (type, handler) {
      handlers[type] = (handlers[type] || []).filter(function (h) { return h !== handler; });
      return this;
    },
  };
  global.addEventListener("message", dispatch);
})(window);
