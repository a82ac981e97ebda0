# Sourced by tools/bench/relay.sh, relay_instr.sh, relay_rate.sh and cluster_throughput.py: the
# one relay benchmark world they measure.
# ANS: the stub home network's fixed PRStartAns; KEY: the forwarder's Bearer key;
# relay_table FILE STUB_PORT [GW]: writes the routing table (forwarder 000202 -> home 000505 at the
# stub, DevAddr block 0A000000/7, an allow-all policy; GW=false: the policy withholds the
# gateways' signal quality and location, so the relay strips them from every GWInfo).
# stub_start DIR PORT: the stub home network, nginx answering ANS on 127.0.0.1:PORT (pid in
# DIR/stub.pid, files under DIR/stub).
# nginx_conf DIR NAME WORKERS SERVER_BLOCK [MAIN]: writes DIR/NAME.conf for `nginx -c
# DIR/NAME.conf -p DIR` (pid DIR/NAME.pid, log and temp files under DIR/NAME, no access log,
# unlimited keep-alive requests); MAIN: more main-context directives.
# relay_block PORT STUB_PORT [TLS_DIRECTIVES]: the server block of the reference relay, nginx as
# a protocol-blind proxy_pass relay with a keep-alive upstream to the stub.
ANS='{"ProtocolVersion":"1.0","SenderID":"000505","ReceiverID":"000202","TransactionID":1,"MessageType":"PRStartAns","Result":{"ResultCode":"Success"},"DevEUI":"0102030405060708","FCntUp":1,"Lifetime":0}'
KEY="bench-key-0123456789"
relay_table() {
  local hash gw=${3:-true}
  hash=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
  cat > "$1" <<JSON
{"networks":[{"net_id":"000202","name":"fwd"},{"net_id":"000505","name":"home"}],
 "members":[{"id":"fwd","net_ids":["000202"],"api_key_hashes":["$hash"],"rate_limit_per_s":10000000},
            {"id":"home","net_ids":["000505"]}],
 "endpoints":[{"id":"home","net_id":"000505","url":"http://127.0.0.1:$2/","timeout_ms":3000,"max_in_flight":4096}],
 "devaddr_blocks":[{"prefix":"0A000000/7","net_id":"000505"}],
 "policies":[{"forwarder_net_id":"000202","uplink":{"join_request":true,"mac_data":true,"application_data":true,"signal_quality":$gw,"localization":$gw},
              "downlink":{"join_accept":true,"mac_data":true,"application_data":true}}]}
JSON
}
nginx_conf() {
  mkdir -p "$1/$2"
  cat > "$1/$2.conf" <<NGX
worker_processes $3; ${5:-}
pid $1/$2.pid;
error_log $1/$2/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/$2; proxy_temp_path $1/$2; fastcgi_temp_path $1/$2;
  uwsgi_temp_path $1/$2; scgi_temp_path $1/$2;
  keepalive_requests 1000000;
  $4
}
NGX
}
relay_block() {
  printf '%s\n  %s' "upstream home { server 127.0.0.1:$2; keepalive 128; }" \
    "server { listen 127.0.0.1:$1${3:-}; location / { proxy_pass http://home; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
}
stub_start() {
  nginx_conf "$1" stub 1 "server { listen 127.0.0.1:$2; location / { default_type application/json; return 200 '$ANS'; } }"
  nginx -c "$1/stub.conf" -p "$1"
}
