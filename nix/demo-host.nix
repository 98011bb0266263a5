# A StreamScout host that talks to the built-in Twitch simulator instead of Twitch: the machine
# of the VM test (checks.<system>.vm) and of `nix run .#demo`.
{ ... }:
{
  services.streamscout = {
    enable = true;
    simulator.enable = true;
    # A demo has no Discord: notifications go to a closed loopback port and fail visibly in
    # Alertmanager's log, which is all a demo needs. Real hosts name a file outside the store.
    discordWebhookFile = "/etc/streamscout-demo/discord-webhook-url";
    # Smaller than the defaults so the whole stack fits a 6 GiB VM.
    flink.taskmanagerMemory = "1536m";
    flink.taskSlots = 2;
  };
  environment.etc."streamscout-demo/discord-webhook-url".text = "http://127.0.0.1:9/no-discord-in-the-demo\n";
  system.stateVersion = "25.11";
}
