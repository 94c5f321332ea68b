module rightsizer.dev/vpa-oracle

go 1.24

require k8s.io/autoscaler/vertical-pod-autoscaler v1.7.1
