#ifndef JOBYLON_BRIDGE_CCURL_H
#define JOBYLON_BRIDGE_CCURL_H
#include <curl/curl.h>
#endif
