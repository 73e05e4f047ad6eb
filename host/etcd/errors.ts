/**
 * The errors of `lease-core/etcd` (docs/etcd.md, the table of codes before §1): EtcdNodeError
 * with a stable `ERR_LEASE_ETCD_*` code, the write whose outcome is unknown (§1: no retries),
 * and the one classification of an etcd3 / gRPC failure that every call goes through.
 * @module
 */
import { LeaseCoreError } from "../core/errors.js";

/**
 * The node refused: a write could not be fenced, the etcd call failed, ... Codes:
 * `ERR_LEASE_ETCD_UNAVAILABLE` (no endpoint answered: down, wrong address, TLS refused),
 * `ERR_LEASE_ETCD_TIMEOUT` (a deadline passed), `ERR_LEASE_ETCD_AUTH` (bad credentials or no
 * permission), `ERR_LEASE_ETCD_REQUEST` (etcd refused the call otherwise),
 * `ERR_LEASE_ETCD_TTL_TOO_SHORT`, `ERR_LEASE_ETCD_CLOSED`, `ERR_LEASE_ETCD_NO_LEASE`,
 * `ERR_LEASE_ETCD_STREAM`, `ERR_LEASE_ETCD_UNKNOWN_OUTCOME`. The gRPC error is the `cause`.
 */
export class EtcdNodeError extends LeaseCoreError {
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, code, options);
  }
}

/** A write whose outcome is unknown (timeout after sending): it may or may not have committed. */
export class EtcdUnknownOutcomeError extends EtcdNodeError {
  constructor(cause: unknown, message = "the write's outcome is unknown (the txn was sent, no answer came)") {
    super(message, "ERR_LEASE_ETCD_UNKNOWN_OUTCOME", { cause });
  }
}

/**
 * An etcd3 / gRPC failure as an EtcdNodeError whose code says what to do (the original is the
 * cause). gRPC status codes: grpc/doc/statuscode.md; etcd3 maps some to its own classes.
 */
export function etcdError(what: string, endpoints: readonly string[], err: unknown): LeaseCoreError {
  if (err instanceof LeaseCoreError) return err;
  const e = err as { name?: unknown; code?: unknown; message?: unknown } | null;
  const name = typeof e?.name === "string" ? e.name : "";
  const status = typeof e?.code === "number" ? e.code : undefined;
  const message = typeof e?.message === "string" ? e.message : String(err);
  const where = endpoints.join(", ");
  // A deadline is told by its status alone, never by the text: grpc-js ends every call whose
  // deadline passed with status 4 DEADLINE_EXCEEDED (@grpc/grpc-js resolving-call.js), etcd
  // answers its own context deadline with the same status (rpctypes.ErrGRPCDeadlineExceeded), a
  // stream's error keeps the numeric code, and etcd3 turns a unary call's into
  // GRPCDeadlineExceededError (etcd3 errors.js castGrpcError, which drops the code). So the
  // client always gives one of the two; a message that mentions a deadline proves nothing.
  if (status === 4 || name === "GRPCDeadlineExceededError") {
    return new EtcdNodeError(`${what}: etcd did not answer in time at ${where} (${message})`, "ERR_LEASE_ETCD_TIMEOUT", { cause: err });
  }
  // Credentials: the status (16, 7) or etcd3's class; the text only for etcd's refusals that
  // carry no status of their own ("etcdserver: user name is empty" is InvalidArgument, 3, like
  // any malformed request: rpctypes.ErrGRPCUserEmpty).
  if (status === 16 || status === 7 || /Authentication|PermissionDenied|InvalidAuth/.test(name) || /authentication failed|permission denied|user name is empty|invalid auth token/i.test(message)) {
    return new EtcdNodeError(`${what}: etcd refused the credentials at ${where} (${message}); check options.auth and options.tls`, "ERR_LEASE_ETCD_AUTH", { cause: err });
  }
  if (status === 14 || name === "GRPCUnavailableError" || name === "GRPCConnectFailedError" || /UNAVAILABLE|ECONNREFUSED|No connection established/i.test(message)) {
    return new EtcdNodeError(`${what}: no etcd endpoint answered at ${where} (${message}); check options.endpoints, that etcd runs, and options.tls for an https endpoint`, "ERR_LEASE_ETCD_UNAVAILABLE", { cause: err });
  }
  return new EtcdNodeError(`${what}: etcd refused the call at ${where} (${message})`, "ERR_LEASE_ETCD_REQUEST", { cause: err });
}

/**
 * A fenced write txn's failure, in the same classification as every other call: etcd's refusal
 * of the credentials or the permission is `ERR_LEASE_ETCD_AUTH` here too, since etcd checks them
 * before the txn applies anything (etcd server/etcdserver/apply_auth.go, authApplierV3.Txn).
 * Any other failure may have come after the txn applied (a deadline passed, a connection
 * dropped, "etcdserver: request timed out"): its outcome is unknown, whatever its code.
 */
export function writeError(endpoints: readonly string[], err: unknown): LeaseCoreError {
  const classified = etcdError("write", endpoints, err);
  return classified.code === "ERR_LEASE_ETCD_AUTH" ? classified : new EtcdUnknownOutcomeError(err);
}
