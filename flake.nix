{
  description = "StreamScout: live Twitch chat spikes turned into clips (Kafka, PyFlink, Postgres) on one NixOS host";

  # nixos-25.11: Python 3.12, apache-kafka with KRaft settings, alloy, grafana provisioning.
  # flake.lock pins the exact revision; see docs/deployment.md for how it was produced.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      # The PyFlink wheels packaged in nix/packages.nix are x86_64 manylinux builds.
      systems = [ "x86_64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (
        system: pkgs:
        let
          p = pkgs.callPackage ./nix/packages.nix { };
        in
        {
          default = p.streamscout;
          inherit (p)
            streamscout
            pyflinkEnv
            flinkDist
            kafkaConnector
            ;
        }
      );

      apps = forAll (
        system: pkgs:
        let
          streamscout = self.packages.${system}.default;
          app = name: script: {
            type = "app";
            program = "${pkgs.writeShellScript name script}";
            meta.description = name;
          };
        in
        {
          default = self.apps.${system}.seed-tokens;
          # `sudo nix run .#seed-tokens -- --client-id ID --client-secret-file FILE`: as root on a
          # host with the module, it runs as the streamscout user, so /var/lib/streamscout/tokens.json
          # gets the owner and mode (0600) the services expect.
          seed-tokens = app "streamscout-seed-tokens" ''
            if [ "$(id -u)" = 0 ] && id streamscout >/dev/null 2>&1; then
              exec ${pkgs.util-linux}/bin/runuser -u streamscout -- ${pkgs.lib.getExe streamscout} seed-tokens "$@"
            fi
            exec ${pkgs.lib.getExe streamscout} seed-tokens "$@"
          '';
          # `nix run .#demo`: a NixOS VM running the whole stack from services.streamscout, with
          # the simulator instead of Twitch; the page is forwarded to http://127.0.0.1:8080/.
          demo = {
            type = "app";
            program = "${self.nixosConfigurations.demo.config.system.build.vm}/bin/run-streamscout-demo-vm";
            meta.description = "StreamScout demo VM";
          };
        }
      );

      nixosModules.default = ./nix/module.nix;
      nixosModules.streamscout = ./nix/module.nix;

      nixosConfigurations.demo = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          self.nixosModules.default
          ./nix/demo-host.nix
          {
            networking.hostName = "streamscout-demo";
            services.streamscout.api.host = "0.0.0.0";
            networking.firewall.allowedTCPPorts = [ 8080 ];
            boot.loader.grub.enable = false;
            fileSystems."/" = {
              device = "/dev/disk/by-label/nixos";
              fsType = "ext4";
            };
            virtualisation.vmVariant.virtualisation = {
              memorySize = 6144;
              cores = 2;
              diskSize = 8192;
              forwardPorts = [
                {
                  from = "host";
                  host.port = 8080;
                  guest.port = 8080;
                }
              ];
            };
          }
        ];
      };

      checks = forAll (
        system: pkgs: {
          vm = pkgs.testers.runNixOSTest (import ./nix/vm-test.nix { module = self.nixosModules.default; });
          package = self.packages.${system}.default;
        }
      );
    };
}
