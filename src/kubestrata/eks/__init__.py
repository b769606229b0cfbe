"""EKS as AWS describes it: the snapshot model, AWS CLI JSON readers, the snapshot document, live
boto3 collection and cluster posture data. Who may do what with it is kubestrata.access."""
