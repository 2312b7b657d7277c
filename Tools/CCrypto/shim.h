// OpenSSL's libcrypto (Debian libssl-dev), for SHA-256 of source models in blob provenance.
#include <openssl/sha.h>
