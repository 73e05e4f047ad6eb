/**
 * The group engine's refusal (`lease-core/etcd`, docs/etcd.md "Many groups on one lease"): a
 * read or write by key on a node that does not lead (or does not yet serve) the key's group.
 * @module
 */
import { NotLeaderError } from "../../core/errors.js";

/** This node does not lead (or does not yet serve) `groupId`; `leaderId` is the node whose key
 *  the local copy shows for it (null: none). A leadership-loss error, like NotLeaderError.
 *  Code `ERR_LEASE_NOT_GROUP_LEADER`. */
export class NotGroupLeaderError extends NotLeaderError {
  constructor(
    /** The group of the key asked for. */
    readonly groupId: number,
    /** The node the local copy shows leading it, or null when none does. */
    readonly leaderId: string | null,
  ) {
    super(leaderId === null ? `not the leader of group ${groupId} (no leader yet)` : `not the leader of group ${groupId} (leader: ${leaderId})`);
    (this as { code: string }).code = "ERR_LEASE_NOT_GROUP_LEADER";
  }
}
