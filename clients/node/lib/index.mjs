// SPDX-License-Identifier: MIT
// index.mjs - the ESM face of the package (the same objects as index.js).
import ferry from './index.js';

export const {
  Client, Worker, Job, codec, servants, parseAddr, PROTOCOL_VERSION, FerryError, CODES, errname, errnoOf,
  ProtoError, TooBigError, VersionError, UnknownTypeError, UnknownServiceError, NoWorkerError,
  DeadlineError, WorkerLostError, WorkerError, OverloadedError, InvalidArgumentError,
  CancelledError, ShuttingDownError, DuplicateIdError, UnauthorizedError, ConnectionError,
  NomemError, SysError, CircuitOpenError, ServiceDisabledError, SlowConsumerError, TimedOutError,
  NoSpaceError, NotMyVbucketError, FencedError, UnavailableError,
} = ferry;
export default ferry;
