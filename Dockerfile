# syntax=docker/dockerfile:1
# Node 24 runs the TypeScript sources directly (type stripping): there is no build step.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The `node` devDependency pins Node for npm scripts on developer machines; the image already
# has Node 24, so install production dependencies only.
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates tini \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
# Numeric, so that the kubelet can check runAsNonRoot (a name is refused: "image has non-numeric
# user"); 1000:1000 is the node image's `node` user and group (nodejs/docker-node's Dockerfiles:
# `groupadd --gid 1000 node && useradd --uid 1000 --gid node`). The pod says the same (runAsUser).
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "src/main.ts"]
