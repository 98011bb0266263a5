# Evaluates flake.nix's outputs with nixpkgs' lib and stand-in packages (no nixpkgs here): the
# output names the user's commands rely on, and the demo host and the VM test's machine run
# through the same module evaluation as tests/deploy/nix/eval-module.nix.
{ lib }:
let
  stub = import ./stub-pkgs.nix { inherit lib; };
  flake = import ../../../flake.nix;
  nixpkgs = {
    lib = lib // {
      # nixpkgs' flake adds nixosSystem to lib; keep the arguments to evaluate them below.
      nixosSystem = args: {
        inherit args;
        config.system.build.vm = stub.drv "nixos-vm" { };
      };
    };
    legacyPackages.x86_64-linux = stub.pkgs;
  };
  self = flake.outputs {
    inherit self nixpkgs;
  };
  host =
    modules:
    let
      evaluated = import ./eval-module.nix { inherit lib modules; };
    in
    {
      inherit (evaluated) failedAssertions unitNames;
      apiHost = evaluated.units.streamscout-api.environment.STREAMSCOUT_API_HOST;
      helixUrl = evaluated.units.streamscout-monitor.environment.STREAMSCOUT_TWITCH_HELIX_URL;
    };
  vmTest = self.checks.x86_64-linux.vm;
in
{
  nixpkgsUrl = flake.inputs.nixpkgs.url;
  packages = lib.mapAttrs (_: builtins.attrNames) self.packages;
  apps = lib.mapAttrs (_: lib.mapAttrs (_: a: { inherit (a) type program; })) self.apps;
  checks = builtins.attrNames self.checks.x86_64-linux;
  modules = lib.mapAttrs (_: toString) self.nixosModules;
  demo = host self.nixosConfigurations.demo.args.modules;
  vm = {
    inherit (vmTest) name;
    machine = host [ vmTest.nodes.machine ];
  };
}
