/*
 * roamhub_fields.h — protobuf field numbers of roamhub.proto for the code that reads packed
 * records without unpacking them (routing-policy/'s zero-allocation field scanner on the data
 * path). They must equal the numbers in roamhub.proto, which are never renumbered;
 * tests/unit/proto/test_roamhub_fields.c checks every constant against the generated
 * descriptors. Only fields read by a scanner are listed.
 */
#ifndef ROAMHUB_FIELDS_H
#define ROAMHUB_FIELDS_H

/* Network */
#define RH_FLD_NETWORK_DELEGATED_NET_IDS 5 /* repeated uint32, packed or not */

/* DevAddrBlock */
#define RH_FLD_BLOCK_NET_ID 3     /* uint32 owner NetID */
#define RH_FLD_BLOCK_TENANT_ID 4  /* string owner tenant */
#define RH_FLD_BLOCK_CLUSTER_ID 5 /* string home cluster */

/* JoinRoute */
#define RH_FLD_JOIN_HOME_NET_ID 5    /* uint32 */
#define RH_FLD_JOIN_HOME_TENANT_ID 6 /* string */
#define RH_FLD_JOIN_SERVER_ID 7      /* string endpoint ID */

/* RoutingPolicy */
#define RH_FLD_POLICY_UPLINK 6   /* UplinkPolicy */
#define RH_FLD_POLICY_DOWNLINK 7 /* DownlinkPolicy */

/* UplinkPolicy (bools) */
#define RH_FLD_UP_JOIN_REQUEST 1
#define RH_FLD_UP_MAC_DATA 2
#define RH_FLD_UP_APPLICATION_DATA 3
#define RH_FLD_UP_SIGNAL_QUALITY 4
#define RH_FLD_UP_LOCALIZATION 5

/* DownlinkPolicy (bools) */
#define RH_FLD_DOWN_JOIN_ACCEPT 1
#define RH_FLD_DOWN_MAC_DATA 2
#define RH_FLD_DOWN_APPLICATION_DATA 3

#endif
