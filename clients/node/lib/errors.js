// SPDX-License-Identifier: MIT
'use strict';
/*
 * errors.js - ferry's errors as JavaScript errors. FerryError carries the
 * stable name as .code ("DEADLINE", the way Node's own errors carry string
 * codes), the number as .errno (7) and the message ferryd or the worker
 * gave; every code has its own subclass (DeadlineError, ...), so callers
 * can test with instanceof or with .code.
 *
 * The list mirrors include/ferry.h (append only; never renumber).
 */

/** [errno, NAME, default message], as in include/ferry.h. */
const CODES = [
  [1, 'PROTO', 'malformed frame'],
  [2, 'TOO_BIG', 'frame too large'],
  [3, 'VERSION', 'unsupported protocol version'],
  [4, 'UNKNOWN_TYPE', 'unknown frame type'],
  [5, 'UNKNOWN_SERVICE', 'unknown service'],
  [6, 'NO_WORKER', 'no worker available for service'],
  [7, 'DEADLINE', 'deadline exceeded'],
  [8, 'WORKER_LOST', 'worker lost while holding the request'],
  [9, 'WORKER_ERROR', 'worker failed to handle the request'],
  [10, 'OVERLOADED', 'overloaded, try again later'],
  [11, 'INVALID_ARGUMENT', 'invalid argument'],
  [12, 'CANCELLED', 'request cancelled'],
  [13, 'SHUTTING_DOWN', 'daemon is shutting down'],
  [14, 'DUPLICATE_ID', 'request id already in flight'],
  [15, 'UNAUTHORIZED', 'not authorized'],
  [16, 'CONNECTION', 'connection failed'],
  [17, 'NOMEM', 'out of memory'],
  [18, 'SYS', 'system error'],
  [19, 'CIRCUIT_OPEN', 'circuit open, failing fast'],
  [20, 'SERVICE_DISABLED', 'service disabled by an operator'],
  [21, 'SLOW_CONSUMER', 'peer does not read what is sent to it'],
  [22, 'TIMED_OUT', 'the connection was silent too long'],
  [23, 'NO_SPACE', 'no space left in the store'],
  [24, 'NOT_MY_VBUCKET', "this node does not own the key's vbucket"],
  [25, 'FENCED', 'node is not a cluster member now'],
  [26, 'UNAVAILABLE', "the data's node is down, try again"],
];

const NAMES = new Map(CODES.map(([n, name]) => [n, name]));
const TEXTS = new Map(CODES.map(([n, , text]) => [n, text]));
const ERRNOS = new Map(CODES.map(([n, name]) => [name, n]));

/** The name of an error number; "UNKNOWN_ERROR" for one a newer ferryd
 * may send that this client does not know. */
function errname(errno) {
  return NAMES.get(errno) || 'UNKNOWN_ERROR';
}

/** The number of an error name, or undefined. */
function errnoOf(name) {
  return ERRNOS.get(name);
}

class FerryError extends Error {
  /**
   * new FerryError(errno, message): use FerryError.of() to get the
   * subclass of the code; a subclass takes (message) alone.
   */
  constructor(errno, message, options) {
    super(message || TEXTS.get(errno) || errname(errno), options);
    this.errno = errno;
    this.code = errname(errno);
  }

  /** An instance of the class of errno (FerryError for an unknown one). */
  static of(errno, message, options) {
    const Cls = CLASSES.get(errno);
    return Cls ? new Cls(message, options) : new FerryError(errno, message, options);
  }
}
FerryError.prototype.name = 'FerryError';

const CLASSES = new Map();
const exported = { FerryError };

function className(name) {
  const s = name.toLowerCase().split('_').map((w) => w[0].toUpperCase() + w.slice(1)).join('');
  return s.endsWith('Error') ? s : s + 'Error'; // WORKER_ERROR is WorkerError
}

for (const [errno, name] of CODES) {
  const cname = className(name);
  // A named class per code, so stack traces and err.constructor.name say
  // "DeadlineError".
  const Cls = {
    [cname]: class extends FerryError {
      constructor(message, options) {
        super(errno, message, options);
      }
    },
  }[cname];
  Object.defineProperty(Cls, 'errno', { value: errno });
  Object.defineProperty(Cls, 'code', { value: name });
  // A call aborted through its AbortSignal rejects with a CancelledError
  // that is also an AbortError by name, as Node's own aborted operations.
  Cls.prototype.name = name === 'CANCELLED' ? 'AbortError' : cname;
  CLASSES.set(errno, Cls);
  exported[cname] = Cls;
}

module.exports = { ...exported, CODES, errname, errnoOf };
