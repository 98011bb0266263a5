# The STREAMSCOUT_* environment of every StreamScout unit, from the module's option values.
# Pure (no nixpkgs): `nix-instantiate --eval --strict --json -E 'import ./nix/env.nix (import ./nix/defaults.nix)'`
# gives what the tests feed to streamscout.common.config.load_settings. Secrets are not here:
# units get STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE pointing at their systemd credential.
cfg:
let
  # toString prints floats as 5.000000; toJSON gives the shortest form Python reads back.
  num = x: if builtins.isFloat x then builtins.toJSON x else toString x;
  list = xs: builtins.concatStringsSep "," (map num xs);
  localhost = port: "127.0.0.1:${toString port}";
in
{
  STREAMSCOUT_STATE_DIR = cfg.stateDir;
  STREAMSCOUT_LOG_LEVEL = cfg.logLevel;
  STREAMSCOUT_TOKEN_FILE = cfg.tokenFile;
  STREAMSCOUT_HTTP_TIMEOUT_SECONDS = num cfg.httpTimeoutSeconds;

  STREAMSCOUT_POSTGRES_DSN = cfg.postgres.dsn;
  STREAMSCOUT_REDIS_URL = "redis://${localhost cfg.redis.port}/0";
  STREAMSCOUT_KAFKA_BOOTSTRAP = localhost cfg.kafka.port;
  STREAMSCOUT_KAFKA_CONTROLLER_PORT = num cfg.kafka.controllerPort;
  STREAMSCOUT_KAFKA_PARTITIONS = num cfg.kafka.partitions;
  STREAMSCOUT_TOPIC_CHAT = cfg.kafka.topicChat;
  STREAMSCOUT_TOPIC_LIFECYCLE = cfg.kafka.topicLifecycle;
  STREAMSCOUT_FLINK_REST_URL = "http://${localhost cfg.flink.restPort}";
  STREAMSCOUT_FLINK_JOBMANAGER_METRICS_PORT = num cfg.flink.jobmanagerMetricsPort;
  STREAMSCOUT_FLINK_TASKMANAGER_METRICS_PORT = num cfg.flink.taskmanagerMetricsPort;
  STREAMSCOUT_PROMETHEUS_PORT = num cfg.prometheus.port;
  STREAMSCOUT_ALERTMANAGER_PORT = num cfg.alertmanager.port;

  STREAMSCOUT_TWITCH_CLIENT_ID = cfg.twitch.clientId;
  STREAMSCOUT_TWITCH_HELIX_URL = cfg.twitch.helixUrl;
  STREAMSCOUT_TWITCH_AUTH_URL = cfg.twitch.authUrl;
  STREAMSCOUT_TWITCH_CHAT_URL = cfg.twitch.chatUrl;

  STREAMSCOUT_MONITOR_HOST = cfg.monitor.host;
  STREAMSCOUT_MONITOR_PORT = num cfg.monitor.port;
  STREAMSCOUT_MONITOR_POLL_SECONDS = num cfg.monitor.pollSeconds;
  STREAMSCOUT_MONITOR_JOIN_RANK = num cfg.monitor.joinRank;
  STREAMSCOUT_MONITOR_LEAVE_RANK = num cfg.monitor.leaveRank;
  STREAMSCOUT_MONITOR_LIVENESS_TTL_SECONDS = num cfg.monitor.livenessTtlSeconds;
  STREAMSCOUT_MONITOR_CLIPPING_RECHECK_DAYS = num cfg.monitor.clippingRecheckDays;
  STREAMSCOUT_MONITOR_STALL_SECONDS = num cfg.monitor.stallSeconds;
  STREAMSCOUT_MONITOR_KAFKA_COMPRESSION = cfg.monitor.kafkaCompression;

  STREAMSCOUT_DETECTOR_VARIANT = cfg.detector.variant;
  STREAMSCOUT_DETECTOR_BUCKET_SECONDS = num cfg.detector.bucketSeconds;
  STREAMSCOUT_DETECTOR_BASELINE_BUCKETS = num cfg.detector.baselineBuckets;
  STREAMSCOUT_DETECTOR_K = num cfg.detector.k;
  STREAMSCOUT_DETECTOR_MIN_EXCESS = num cfg.detector.minExcess;
  STREAMSCOUT_DETECTOR_COOLDOWN_SECONDS = num cfg.detector.cooldownSeconds;
  STREAMSCOUT_DETECTOR_CLIP_DELAY_SECONDS = num cfg.detector.clipDelaySeconds;
  STREAMSCOUT_DETECTOR_RETRY_OFFSETS = list cfg.detector.retryOffsets;
  STREAMSCOUT_DETECTOR_FETCH_OFFSETS = list cfg.detector.fetchOffsets;
  STREAMSCOUT_DETECTOR_PARALLELISM = num cfg.detector.parallelism;
  STREAMSCOUT_DETECTOR_CHECKPOINT_SECONDS = num cfg.detector.checkpointSeconds;
  STREAMSCOUT_DETECTOR_OUT_OF_ORDERNESS_SECONDS = num cfg.detector.outOfOrdernessSeconds;
  STREAMSCOUT_DETECTOR_IDLENESS_SECONDS = num cfg.detector.idlenessSeconds;

  STREAMSCOUT_API_HOST = cfg.api.host;
  STREAMSCOUT_API_PORT = num cfg.api.port;
  STREAMSCOUT_API_THREADS = num cfg.api.threads;
  STREAMSCOUT_API_POOL_MIN = num cfg.api.poolMin;
  STREAMSCOUT_API_POOL_MAX = num cfg.api.poolMax;

  STREAMSCOUT_SIM_PORT = num cfg.simulator.port;
}
