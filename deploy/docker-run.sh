#!/usr/bin/env bash
# Builds the doorsense image and (re)starts its container, then waits until
# the image's HEALTHCHECK (GET /debug/get/exists) reports healthy.
#
#   deploy/docker-run.sh            CPU image (target runtime)
#   deploy/docker-run.sh --gpu      CUDA image (target runtime-gpu; needs the NVIDIA container toolkit)
#   deploy/docker-run.sh --no-build restart from the image already built
#
# Settings (environment of this script):
#   DOORSENSE_ENV_FILE   server settings, passed as --env-file (deploy/doorsense.env)
#   DOORSENSE_IMAGE      image name (doorsense); the tag is latest or gpu
#   DOORSENSE_CONTAINER  container name (doorsense)
#   DOORSENSE_VOLUME     volume (or host folder) mounted as the data directory (doorsense-data)
#   DOORSENSE_PUBLISH    host address:port published to the container's 20002 (127.0.0.1:20002)
#
# --init makes docker's tiny init PID 1: it forwards SIGTERM to node (which
# finishes in-flight requests) and reaps zombies. In a container, redeploy is
# "build a new image and run this again": the image holds no git checkout, and
# POST /debug/post/redeploy answers configured=false there.
set -euo pipefail
cd "$(dirname "$0")/.."

gpu=0
build=1
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "docker-run: unknown option $arg (try --help)" >&2; exit 1 ;;
  esac
done

image_name="${DOORSENSE_IMAGE:-doorsense}"
container="${DOORSENSE_CONTAINER:-doorsense}"
volume="${DOORSENSE_VOLUME:-doorsense-data}"
publish="${DOORSENSE_PUBLISH:-127.0.0.1:20002}"
env_file="${DOORSENSE_ENV_FILE:-deploy/doorsense.env}"

target=runtime
image="$image_name:latest"
extra=()
if [ "$gpu" = 1 ]; then
  target=runtime-gpu
  image="$image_name:gpu"
  extra+=(--gpus all)
fi
if [ -f "$env_file" ]; then
  extra+=(--env-file "$env_file")
else
  echo "docker-run: $env_file not found: running on the image's defaults (copy deploy/doorsense.env.example)" >&2
fi

if [ "$build" = 1 ]; then
  docker build --target "$target" -t "$image" .
fi

docker rm -f "$container" >/dev/null 2>&1 || true
# the -e values win over the env file: inside the image the server binds every
# address of the container, on port 20002, with its data in the volume
docker run -d --init \
  --name "$container" \
  --restart unless-stopped \
  "${extra[@]}" \
  -e HOST=0.0.0.0 -e PORT=20002 -e DATA_DIR=/data \
  -p "$publish:20002" \
  -v "$volume:/data" \
  "$image" >/dev/null

for _ in $(seq 1 60); do
  status="$(docker inspect --format '{{.State.Health.Status}}' "$container" 2>/dev/null || echo missing)"
  case "$status" in
    healthy) echo "docker-run: $container ($image) is healthy on $publish"; exit 0 ;;
    unhealthy|missing) break ;;
  esac
  sleep 2
done
echo "docker-run: $container did not become healthy (status: ${status:-unknown}); its log:" >&2
docker logs --tail 50 "$container" >&2 || true
exit 1
