# Shared by the benchmark scripts: source it, then call these.

# answering_nginx DIR PORT STATUS BODY: writes DIR/nginx.conf for one worker
# answering every request on 127.0.0.1:PORT with STATUS and BODY, starts it.
answering_nginx() {
    local dir=$1 port=$2 status=$3 body=$4
    mkdir -p "$dir"
    cat > "$dir/nginx.conf" <<NGINX
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $dir/body;
  server { listen 127.0.0.1:$port; location / { client_max_body_size 2m; return $status '$body'; } } }
NGINX
    nginx -c "$dir/nginx.conf"
}

# stop_nginx DIR: stops what answering_nginx started there (quietly if it is gone).
stop_nginx() {
    nginx -c "$1/nginx.conf" -s stop 2>/dev/null || true
}
