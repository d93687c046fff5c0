//! Kafka's error codes: one table, codes never reused (shared by the broker and clients).

macro_rules! error_codes {
    ($($name:ident = $code:literal, $retriable:literal, $doc:literal;)*) => {
        /// A Kafka protocol error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(i16)]
        pub enum ErrorCode {
            $(#[doc = $doc] $name = $code,)*
        }

        impl ErrorCode {
            /// The code sent on the wire.
            pub fn code(self) -> i16 {
                self as i16
            }

            /// Whether Kafka clients retry on this error.
            pub fn is_retriable(self) -> bool {
                match self {
                    $(ErrorCode::$name => $retriable,)*
                }
            }

            /// Every code in the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];
        }
    };
}

error_codes! {
    None = 0, false, "No error.";
    UnknownServerError = -1, false, "An unexpected server error.";
    OffsetOutOfRange = 1, false, "The requested offset is outside the log.";
    CorruptMessage = 2, true, "A record batch failed its CRC or size checks.";
    UnknownTopicOrPartition = 3, true, "The topic or partition does not exist on this broker.";
    InvalidFetchSize = 4, false, "The fetch size is invalid.";
    LeaderNotAvailable = 5, true, "No leader for this partition yet.";
    NotLeaderOrFollower = 6, true, "This broker is not the leader for the partition.";
    RequestTimedOut = 7, true, "The request timed out.";
    ReplicaNotAvailable = 9, true, "The replica is not available for the requested topic-partition.";
    NotEnoughReplicas = 19, true, "Messages are rejected since there are fewer in-sync replicas than required.";
    NotEnoughReplicasAfterAppend = 20, true, "Messages are written to the log, but to fewer in-sync replicas than required.";
    MessageTooLarge = 10, false, "The batch is larger than the maximum allowed.";
    InvalidTopicException = 17, false, "The topic name is not valid.";
    RecordListTooLarge = 18, false, "The request's record set is too large.";
    InvalidRequiredAcks = 21, false, "acks must be -1, 0 or 1.";
    UnsupportedVersion = 35, false, "The API version is not supported.";
    TopicAlreadyExists = 36, false, "The topic already exists.";
    InvalidPartitions = 37, false, "The number of partitions is invalid.";
    InvalidReplicationFactor = 38, false, "The replication factor is invalid.";
    InvalidReplicaAssignment = 39, false, "The replica assignment is invalid.";
    InvalidConfig = 40, false, "A configuration value is invalid.";
    NotController = 41, true, "This is not the correct controller for this cluster.";
    InvalidRequest = 42, false, "The request is malformed or not allowed.";
    CoordinatorNotAvailable = 15, true, "The coordinator is not available.";
    FetchSessionIdNotFound = 70, true, "The fetch session id was not found.";
    KafkaStorageError = 56, true, "The broker could not read or write its disk.";
    UnsupportedCompressionType = 76, false, "The compression type is not supported by this request version.";
    InvalidRecord = 87, false, "A record failed validation.";
    UnknownTopicId = 100, true, "No topic with this id.";
    InvalidTimestamp = 32, false, "A timestamp is outside the accepted range.";
    OffsetMetadataTooLarge = 12, false, "The commit's metadata string is too large.";
    CoordinatorLoadInProgress = 14, true, "The coordinator is still loading its state.";
    NotCoordinator = 16, true, "This broker is not the coordinator for the group.";
    IllegalGeneration = 22, false, "The generation id is not the group's current one.";
    InconsistentGroupProtocol = 23, false, "The member's protocol does not match the group's.";
    InvalidGroupId = 24, false, "The group id is empty or invalid.";
    UnknownMemberId = 25, false, "The member id is not known to the group.";
    InvalidSessionTimeout = 26, false, "The session timeout is outside the allowed range.";
    RebalanceInProgress = 27, false, "The group is rebalancing; rejoin.";
    NonEmptyGroup = 68, false, "The group still has members.";
    GroupIdNotFound = 69, false, "The group does not exist.";
    MemberIdRequired = 79, false, "Rejoin with the member id in this response.";
    GroupMaxSizeReached = 81, false, "The group is at group.max.size.";
    FencedInstanceId = 82, false, "Another member holds this group.instance.id.";
    PreferredLeaderNotAvailable = 80, true, "The preferred leader was not available.";
    EligibleLeadersNotAvailable = 83, false, "Eligible topic partition leaders are not available.";
    ElectionNotNeeded = 84, false, "Leader election not needed for topic partition.";
    NoReassignmentInProgress = 85, false, "No partition reassignment is in progress.";
    GroupSubscribedToTopic = 86, false, "The group is subscribed to the topic.";
    FencedMemberEpoch = 110, false, "The member epoch is fenced; rejoin with epoch 0.";
    UnreleasedInstanceId = 111, false, "The instance id is still in use by another member.";
    UnsupportedAssignor = 112, false, "The server-side assignor is not supported.";
    StaleMemberEpoch = 113, false, "The member epoch is stale.";
    FencedLeaderEpoch = 74, true, "The leader epoch in the request is older than the broker's.";
    UnknownLeaderEpoch = 75, true, "The leader epoch in the request is newer than the broker's.";
    OutOfOrderSequenceNumber = 45, false, "The producer's batch does not continue its sequence.";
    DuplicateSequenceNumber = 46, false, "The batch is a duplicate (never sent: duplicates get their original offsets).";
    InvalidProducerEpoch = 47, false, "The producer's epoch is older than the current one.";
    UnknownProducerId = 59, false, "The broker has no state for this producer id.";
    ProducerFenced = 90, false, "A newer producer with the same id has been initialised.";
    InvalidTxnState = 48, false, "The producer attempted a transactional operation in an invalid state.";
    TransactionCoordinatorFenced = 52, false, "A newer transaction coordinator has written to this partition.";
    InvalidProducerIdMapping = 49, false, "The producer id does not match the transactional id's.";
    InvalidTransactionTimeout = 50, false, "The transaction timeout is larger than transaction.max.timeout.ms.";
    ConcurrentTransactions = 51, true, "Another transactional operation on this transactional id is in progress.";
    UnsupportedSaslMechanism = 33, false, "The SASL mechanism is not enabled on this listener.";
    IllegalSaslState = 34, false, "The SASL request is not expected in this state of the connection.";
    SaslAuthenticationFailed = 58, false, "SASL authentication failed.";
    TopicAuthorizationFailed = 29, false, "The principal may not perform this operation on the topic.";
    GroupAuthorizationFailed = 30, false, "The principal may not perform this operation on the group.";
    ClusterAuthorizationFailed = 31, false, "The principal may not perform this operation on the cluster.";
    TransactionalIdAuthorizationFailed = 53, false, "The principal may not use this transactional id.";
    SecurityDisabled = 54, false, "Security features are disabled (no authorizer is configured).";
    ResourceNotFound = 91, false, "The resource (e.g. a user's SCRAM credential) does not exist.";
    DuplicateResource = 92, false, "The request names the same resource more than once.";
    UnacceptableCredential = 93, false, "The requested credential does not meet the broker's criteria.";
    InvalidRegularExpression = 130, false, "The regular expression is not valid.";
    OperationNotAttempted = 55, false, "The operation was not attempted because another in the request failed.";
    TransactionalIdNotFound = 105, false, "The transactional id is not known to the coordinator.";
    InvalidRecordState = 121, false, "The record is not in a state this acknowledgement can change (share groups).";
    ShareSessionNotFound = 122, true, "The share session was not found.";
    InvalidShareSessionEpoch = 123, true, "The share session epoch is not the expected one.";
    FencedStateEpoch = 124, false, "The share-group state epoch is older than the stored one.";
    ShareSessionLimitReached = 133, true, "The broker holds as many share sessions as it may.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<i16> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n);
    }
}
