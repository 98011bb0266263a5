# Default values of the services.streamscout options, as plain data (no nixpkgs needed), so the
# test suite can evaluate them with `nix-instantiate --eval --strict --json` and compare them with
# the defaults of streamscout.common.config.Settings. Ports equal the ones `streamscout stack up`
# uses on a developer machine, so configs/ (Prometheus targets, Grafana datasources) fit both.
{
  logLevel = "INFO";
  stateDir = "/var/lib/streamscout";
  tokenFile = "/var/lib/streamscout/tokens.json";
  httpTimeoutSeconds = 5.0;

  # The system PostgreSQL over its Unix socket with peer authentication: no password anywhere.
  postgres.dsn = "postgresql://streamscout@/streamscout?host=/run/postgresql";
  redis.port = 56379;

  kafka = {
    port = 59092;
    # Not 9093: that is Alertmanager's port.
    controllerPort = 59093;
    partitions = 4;
    topicChat = "chat-messages";
    topicLifecycle = "stream-lifecycle";
    clusterId = "c3RyZWFtc2NvdXQtZGVtbw";
  };

  flink = {
    restPort = 58081;
    rpcPort = 56123;
    jobmanagerMetricsPort = 9249;
    taskmanagerMetricsPort = 9250;
    taskSlots = 4;
    jobmanagerMemory = "1024m";
    taskmanagerMemory = "3072m";
  };

  prometheus.port = 9090;
  alertmanager.port = 9093;
  # Not 9100: the stream monitor's /metrics port (the spec's), so node exporter moves aside.
  nodeExporter.port = 9101;
  grafana.port = 3000;

  twitch = {
    clientId = "";
    helixUrl = "https://api.twitch.tv/helix/";
    authUrl = "https://id.twitch.tv/oauth2/";
    chatUrl = "wss://irc-ws.chat.twitch.tv:443";
  };

  monitor = {
    host = "127.0.0.1";
    port = 9100;
    pollSeconds = 120.0;
    joinRank = 5;
    leaveRank = 10;
    livenessTtlSeconds = 150.0;
    clippingRecheckDays = 7.0;
    stallSeconds = 90.0;
    kafkaCompression = "lz4";
  };

  detector = {
    variant = "spec";
    bucketSeconds = 5.0;
    baselineBuckets = 60;
    k = 3.0;
    minExcess = 1.0;
    cooldownSeconds = 30.0;
    clipDelaySeconds = 10.0;
    retryOffsets = [ 2.0 4.0 ];
    fetchOffsets = [ 15.0 30.0 60.0 ];
    parallelism = 1;
    checkpointSeconds = 10.0;
    outOfOrdernessSeconds = 2.0;
    idlenessSeconds = 10.0;
  };

  api = {
    host = "127.0.0.1";
    port = 8080;
    threads = 8;
    poolMin = 1;
    poolMax = 10;
  };

  simulator = {
    port = 8900;
    scenario = "demo";
    # The simulator's built-in application (src/streamscout/sim/scenario.py); public test values.
    clientId = "simclientid0000000000000000000";
    clientSecret = "simclientsecret000000000000000";
  };
}
