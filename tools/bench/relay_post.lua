-- wrk script of the relay benchmarks (tools/bench/relay.sh, cluster_throughput.py): a realistic
-- ChirpStack-style PRStartReq (1 GWInfo) from forwarder 000202 to home 000505 (relay_world.sh's
-- table and key), TransactionID varied per request.
local n = 0
local t1 = '{"ProtocolVersion":"1.0","SenderID":"000202","ReceiverID":"000505","TransactionID":'
local t2 = ',"MessageType":"PRStartReq","PHYPayload":"400100000a800100016b5ed0ec2e5c4f9f09f2bd7b","ULMetaData":{"DataRate":5,"ULFreq":868.1,"RecvTime":"2026-11-21T12:00:00.123Z","RFRegion":"EU868","GWCnt":1,"GWInfo":[{"ID":"05060708","RFRegion":"EU868","RSSI":-81,"SNR":7.5,"Lat":52.37,"Lon":4.89,"ULToken":"0a0b0c0d0e0f10111213","DLAllowed":true}]}}'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key-0123456789"
request = function()
  n = n + 1
  return wrk.format(nil, "/", nil, t1 .. n .. t2)
end
