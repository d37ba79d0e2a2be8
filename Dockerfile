# syntax=docker/dockerfile:1
#
# doorsense images (deploy/docker-run.sh builds and runs them):
#   CPU (default target):  docker build -t doorsense .
#   GPU (CUDA):            docker build --target runtime-gpu -t doorsense:gpu .
# Run with an init as PID 1, so signals reach node and zombies are reaped:
#   docker run --init -p 20002:20002 -v doorsense-data:/data doorsense
# The server runs TypeScript through tsx (a production dependency); there is
# no compile step, so "build" here is the typecheck plus the docs site.

ARG NODE_IMAGE=node:20-bookworm-slim
# @tensorflow/tfjs-node-gpu 4.x links libtensorflow 2.9: CUDA 11.2 with cuDNN 8.1
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04

# ---- deps: every dependency, dev ones included; native addons compiled here
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# the optional native TensorFlow bindings download libtensorflow; each image adds the one it needs below
RUN npm ci --omit=optional --no-audit --no-fund

# ---- build: typecheck (the build that can fail) and the typedoc site served at /docs/
FROM deps AS build
COPY . .
RUN npx tsc --noEmit \
 && node --import tsx bin/generate-docs.ts

# ---- prod-deps: production dependencies only, plus the native CPU backend when it installs
FROM deps AS prod-deps
RUN npm prune --omit=dev --no-audit --no-fund \
 && { npm install --no-save --omit=dev --no-audit --no-fund \
        "@tensorflow/tfjs-node@$(node -p "require('./package.json').optionalDependencies['@tensorflow/tfjs-node']")" \
      || echo 'warning: @tensorflow/tfjs-node did not install; the image uses the pure-JS cpu backend'; }

# ---- app: the files the server runs, nothing else (no tests, no benchmarks, no .git)
FROM scratch AS app
COPY package.json package-lock.json tsconfig.json /app/
COPY bin /app/bin
COPY core /app/core
COPY ml /app/ml
COPY plugins /app/plugins
COPY schemas /app/schemas
COPY domain /app/domain
COPY --from=build /app/docs-site /app/docs-site

# ---- GPU: node on the CUDA base; native addons compiled against this base's glibc
FROM ${NODE_IMAGE} AS node-dist

FROM ${CUDA_IMAGE} AS gpu-deps
COPY --from=node-dist /usr/local/bin/node /usr/local/bin/node
COPY --from=node-dist /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
# hadolint ignore=DL3008
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund \
 && npm install --no-save --omit=dev --no-audit --no-fund \
      "@tensorflow/tfjs-node-gpu@$(node -p "require('./package.json').optionalDependencies['@tensorflow/tfjs-node-gpu']")"

FROM ${CUDA_IMAGE} AS runtime-gpu
COPY --from=node-dist /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 1000 doorsense \
 && useradd --system --uid 1000 --gid doorsense --home-dir /app --shell /usr/sbin/nologin doorsense \
 && mkdir -p /data \
 && chown doorsense:doorsense /data
ENV NODE_ENV=production HOST=0.0.0.0 PORT=20002 DATA_DIR=/data TF_BACKEND=gpu
WORKDIR /app
COPY --from=gpu-deps /app/node_modules ./node_modules
COPY --from=app /app ./
USER doorsense
VOLUME ["/data"]
EXPOSE 20002
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 20002) + '/debug/get/exists', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--import", "tsx", "bin/serve.ts"]

# ---- runtime (the default target): CPU
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=20002 DATA_DIR=/data
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=app /app ./
# the code stays root's and read-only; only the data volume belongs to the unprivileged user
RUN mkdir -p /data \
 && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 20002
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 20002) + '/debug/get/exists', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--import", "tsx", "bin/serve.ts"]
