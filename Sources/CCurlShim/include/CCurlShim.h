// Typed, non-variadic wrappers over libcurl's variadic API.
//
// Swift cannot call C variadic functions (curl_easy_setopt, curl_easy_getinfo,
// curl_multi_setopt), and some of curl's macros alias other macros and do not
// import. Each wrapper here fixes one argument type so Swift can call it; the
// argument kinds follow curl's own typecheck-gcc.h classes.
#ifndef JOBYLON_BRIDGE_CCURL_SHIM_H
#define JOBYLON_BRIDGE_CCURL_SHIM_H

#include <curl/curl.h>
#include <stddef.h>
#include <sys/socket.h>

typedef size_t (*jb_curl_data_callback)(char *buffer, size_t size, size_t nitems, void *userdata);
typedef int (*jb_curl_xferinfo_callback)(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                                        curl_off_t ultotal, curl_off_t ulnow);
typedef curl_socket_t (*jb_curl_opensocket_callback)(void *userdata, curlsocktype purpose,
                                                     struct curl_sockaddr *address);

CURLcode jb_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode jb_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode jb_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode jb_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode jb_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode jb_easy_setopt_data_callback(CURL *handle, CURLoption option, jb_curl_data_callback callback);
CURLcode jb_easy_setopt_xferinfo_callback(CURL *handle, jb_curl_xferinfo_callback callback);
CURLcode jb_easy_setopt_opensocket_callback(CURL *handle, jb_curl_opensocket_callback callback);

CURLcode jb_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode jb_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode jb_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value);
CURLcode jb_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value);

CURLMcode jb_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

/// `CURL_GLOBAL_ALL` and `CURLVERSION_NOW` are macros Swift does not import.
CURLcode jb_global_init_all(void);
const char *jb_version_string(void);
/// `CURL_WRITEFUNC_PAUSE`, for write callbacks that apply backpressure.
size_t jb_writefunc_pause(void);
/// The numeric version (e.g. 0x075801 for 7.88.1), to gate features.
unsigned int jb_version_num(void);
/// `CURL_READFUNC_ABORT`, for read callbacks whose source failed.
size_t jb_readfunc_abort(void);
/// `CURLPAUSE_CONT` (a macro of macros): resumes a paused transfer.
int jb_pause_cont(void);

/// The IP address curl is about to connect to, for an address policy in an
/// OPENSOCKETFUNCTION: copies 4 (IPv4) or 16 (IPv6) bytes into `out` and
/// returns that count, or 0 for any other family.
int jb_sockaddr_ip(const struct curl_sockaddr *address, unsigned char out[16]);
/// Opens the socket curl asked for (what curl does without a callback), close-on-exec.
curl_socket_t jb_open_socket(const struct curl_sockaddr *address);

#endif
