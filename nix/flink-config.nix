# Flink 2.x config.yaml (Flink 2 reads only config.yaml, never flink-conf.yaml) for one role of
# the single-host standalone cluster, as plain data: the module writes it with builtins.toJSON
# (JSON is valid YAML) and the tests evaluate it and compare it with the dev stack's Flink config.
# JobManager and TaskManager share a host, so each gets its own Prometheus reporter port.
{
  role, # "jobmanager" or "taskmanager"
  flink, # the `flink` attrset of defaults.nix / services.streamscout.flink
  pythonExecutable,
  stateDir,
}:
assert builtins.elem role [ "jobmanager" "taskmanager" ];
{
  # Kept from the distribution's own config.yaml: the module access Flink needs on Java 17.
  "env.java.opts.all" = builtins.concatStringsSep " " [
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED"
    "--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED"
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED"
    "--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED"
    "--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED"
    "--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED"
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED"
    "--add-opens=java.base/java.lang=ALL-UNNAMED"
    "--add-opens=java.base/java.net=ALL-UNNAMED"
    "--add-opens=java.base/java.io=ALL-UNNAMED"
    "--add-opens=java.base/java.nio=ALL-UNNAMED"
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED"
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED"
    "--add-opens=java.base/java.text=ALL-UNNAMED"
    "--add-opens=java.base/java.time=ALL-UNNAMED"
    "--add-opens=java.base/java.util=ALL-UNNAMED"
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED"
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED"
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED"
  ];
  "jobmanager.rpc.address" = "127.0.0.1";
  "jobmanager.rpc.port" = flink.rpcPort;
  "jobmanager.bind-host" = "127.0.0.1";
  "taskmanager.bind-host" = "127.0.0.1";
  "taskmanager.host" = "127.0.0.1";
  "rest.address" = "127.0.0.1";
  "rest.bind-address" = "127.0.0.1";
  "rest.port" = flink.restPort;
  "jobmanager.memory.process.size" = flink.jobmanagerMemory;
  "taskmanager.memory.process.size" = flink.taskmanagerMemory;
  # Every submitted job loads the Kafka connector and PyFlink's classes again.
  "taskmanager.memory.jvm-metaspace.size" = "768m";
  "taskmanager.numberOfTaskSlots" = flink.taskSlots;
  "parallelism.default" = 1;

  "jobmanager.execution.failover-strategy" = "region";
  # Checkpoints survive restarts of both processes and of the job (the detector resumes from them).
  "execution.checkpointing.dir" = "file://${stateDir}/flink/checkpoints";
  "execution.checkpointing.savepoint-dir" = "file://${stateDir}/flink/savepoints";
  "state.backend.type" = "hashmap";
  "io.tmp.dirs" = "${stateDir}/flink/tmp";
  "web.submit.enable" = true;
  "web.cancel.enable" = true;

  # The Python the detector's UDFs run in: PyFlink of the same version as the cluster + StreamScout.
  "python.executable" = pythonExecutable;
  "python.client.executable" = pythonExecutable;

  "metrics.reporters" = "prom";
  "metrics.reporter.prom.factory.class" = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory";
  "metrics.reporter.prom.host" = "127.0.0.1";
  "metrics.reporter.prom.port" = toString (
    if role == "jobmanager" then flink.jobmanagerMetricsPort else flink.taskmanagerMetricsPort
  );
}
