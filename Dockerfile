# syntax=docker/dockerfile:1
# Cairn: multi-stage build on the official Node 24 slim image.
#   build:   type-checks and compiles with the project's own `npm run build` (dist/)
#   deps:    production dependencies only
#   runtime: dist/ + production node_modules, non-root, read-only-root friendly
#
#   docker build -t cairn .
#   docker run -p 9999:9999 -p 9998:9998 -e CAIRN_ADMIN_TOKEN=change-me \
#     -v $PWD/routes.yaml:/etc/cairn/routes.yaml:ro cairn --registry file:/etc/cairn/routes.yaml
#
# The admin listener binds all interfaces in the container, so it needs CAIRN_ADMIN_TOKEN (or
# CAIRN_ADMIN_READONLY=true); Cairn refuses to start otherwise.

FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the image already has Node 24; the pinned `node` dev dependency is for checkouts.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY routing ./routing
COPY registry-adapters ./registry-adapters
COPY lib ./lib
RUN npm run build

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
USER node
EXPOSE 9999 9998
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9998/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/lib/cli/main.js"]
CMD ["--listen", ":9999", "--admin", ":9998"]
