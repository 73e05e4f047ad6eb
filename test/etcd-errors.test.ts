// The one classification of etcd failures in lease-core/etcd (host/etcd/errors.ts, docs/etcd.md's
// table of codes): the gRPC status decides, never the message text. Unit tests on the engine's
// source (no etcd needed): the errors are shaped as grpc-js and etcd3 hand them over — a raw
// stream error keeps grpc-js's numeric `code`; etcd3's castGrpcError turns a unary call's error
// into a class (GRPCDeadlineExceededError, ...) and drops the code.
import { describe, expect, test } from "vitest";
import { etcdError, EtcdNodeError } from "../host/etcd/errors.js";
import { keepAliveFailureReason } from "../host/etcd/keepalive.js";

const ENDPOINTS = ["127.0.0.1:2379"];
/** An error as grpc-js emits it on a stream: `Object.assign(new Error(message), { code, details })`. */
const grpc = (code: number, message: string) => Object.assign(new Error(message), { code, details: message });
/** An error as etcd3 rejects a unary call with: a class by name, no numeric code. */
const cast = (name: string, message: string) => Object.assign(new Error(message), { name });

describe("a deadline is told by its status, not its text", () => {
  test.each([
    ["gRPC status 4 on a stream", grpc(4, "4 DEADLINE_EXCEEDED: Deadline exceeded"), "ERR_LEASE_ETCD_TIMEOUT"],
    ["etcd3's GRPCDeadlineExceededError on a unary call", cast("GRPCDeadlineExceededError", "GRPCDeadlineExceededError: Deadline exceeded"), "ERR_LEASE_ETCD_TIMEOUT"],
    ["status 4 whatever its text says", grpc(4, "4 DEADLINE_EXCEEDED: call ended"), "ERR_LEASE_ETCD_TIMEOUT"],
    ["UNAVAILABLE whose text mentions a deadline", grpc(14, "14 UNAVAILABLE: connection closed before the deadline exceeded"), "ERR_LEASE_ETCD_UNAVAILABLE"],
    ["etcd3's GRPCUnavailableError whose text mentions a deadline", cast("GRPCUnavailableError", "GRPCUnavailableError: deadline exceeded on a dropped connection"), "ERR_LEASE_ETCD_UNAVAILABLE"],
    ["an etcd refusal whose text mentions a deadline", cast("EtcdError", "etcdserver: lease deadline exceeded"), "ERR_LEASE_ETCD_REQUEST"],
  ])("%s", (_what, err, code) => {
    const classified = etcdError("linearizable read", ENDPOINTS, err);
    expect(classified).toBeInstanceOf(EtcdNodeError);
    expect(classified).toMatchObject({ name: "EtcdNodeError", code });
    expect((classified as { cause?: unknown }).cause).toBe(err);
  });
});

describe("a failed keepalive reports keepalive-timeout for a timeout by code, whatever the text", () => {
  test.each([
    ["its own deadline (no answer in requestTimeoutMs)", new EtcdNodeError("keepalive timed out (no answer in 5 ms)", "ERR_LEASE_ETCD_TIMEOUT"), "keepalive-timeout"],
    ["a stream error with gRPC status 4", etcdError("keepalive", ENDPOINTS, grpc(4, "4 DEADLINE_EXCEEDED: Deadline exceeded")), "keepalive-timeout"],
    ["a stream that ended", new EtcdNodeError("keepalive stream ended", "ERR_LEASE_ETCD_STREAM"), "keepalive-error"],
    ["an unavailable etcd whose text says it timed out", etcdError("keepalive", ENDPOINTS, grpc(14, "14 UNAVAILABLE: etcdserver: request timed out")), "keepalive-error"],
  ])("%s", (_what, err, reason) => {
    expect(keepAliveFailureReason(err)).toBe(reason);
  });
});
