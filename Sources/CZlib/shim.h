// zlib from the system (Debian: zlib1g-dev), for gzip-compressed scrapes.
#include <zlib.h>
