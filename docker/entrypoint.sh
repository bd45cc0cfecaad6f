#!/bin/sh
# Apply database migrations, then run the command (the bot by default).
set -e
chibify db upgrade
exec "$@"
